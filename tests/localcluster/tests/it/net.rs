//! Pod networking: namespaces reach each other and the host over the bridge, a partition cuts a
//! pod off, and nothing is left behind.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use localcluster::net::Network;

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// Runs `f` on a thread that has joined the namespace of the process `pid`.
fn in_netns<T: Send + 'static>(pid: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        // SAFETY: setns on this thread only, with a namespace fd we opened.
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        f()
    })
    .join()
    .unwrap()
}

fn connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

#[test]
fn pods_reach_each_other_and_a_partition_cuts_one_off() {
    let net = Network::create().unwrap();
    let bridge = net.bridge().to_string();
    assert!(link_exists(&bridge));
    let a = net.add_pod().unwrap();
    let b = net.add_pod().unwrap();
    assert_ne!(a.ip, b.ip);
    let a_pid = a.pause_pid();
    let addr = SocketAddr::from((a.ip, 7000));
    // A listener inside pod a's namespace (the socket stays there after the thread ends).
    let listener: TcpListener = in_netns(a_pid, move || TcpListener::bind(addr).unwrap());
    listener.set_nonblocking(true).unwrap();
    assert!(connects(addr), "the host reaches pod a");
    let b_pid = b.pause_pid();
    assert!(
        in_netns(b_pid, move || connects(addr)),
        "pod b reaches pod a"
    );

    net.partition(&a, true).unwrap();
    assert!(!connects(addr), "a partitioned pod is unreachable");
    net.partition(&a, false).unwrap();
    // The veth's carrier and the neighbour entry take a moment to come back, longer under load.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !connects(addr) {
        assert!(std::time::Instant::now() < deadline, "reconnected");
        std::thread::sleep(Duration::from_millis(100));
    }

    let a_link = a.host_link.clone();
    drop(listener);
    drop(a);
    drop(b);
    assert!(!std::path::Path::new(&format!("/proc/{a_pid}")).exists());
    assert!(
        !link_exists(&a_link),
        "the veth pair goes with the namespace"
    );
    drop(net);
    assert!(!link_exists(&bridge), "the bridge is removed");
}
