// kubelet-streaming serves the part of the kubelet API that the API server proxies to a node:
// /exec, /attach, /portForward and /containerLogs, over HTTPS with client-certificate auth.
// The protocol code (SPDY/3.1 and the WebSocket channel protocols) is upstream's own
// (k8s.io/cri-streaming, what kwok and virtual-kubelet use); this file only maps a request to a
// pod sandbox of the localcluster node agent, which describes each running pod in
// <state-dir>/sandboxes/<namespace>/<pod>.json.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// sandbox is written by the node agent (tests/localcluster/src/agent) when a pod starts.
type sandbox struct {
	UID string `json:"uid"`
	IP  string `json:"ip"`
	// Netns is the pod's network namespace (/proc/<pause pid>/ns/net).
	Netns      string                      `json:"netns"`
	Containers map[string]containerSandbox `json:"containers"`
	// The first container, used when a request names none.
	Default string `json:"default"`
}

type containerSandbox struct {
	// Exec is the argv prefix that runs a command inside the container's sandbox
	// (nsenter into the pod's network namespace, then bwrap with the pod's mounts and env).
	Exec []string `json:"exec"`
	Log  string   `json:"log"`
}

type server struct {
	stateDir string
}

const (
	idleTimeout           = 4 * time.Hour
	streamCreationTimeout = 30 * time.Second
)

func (s *server) sandbox(ns, pod string) (*sandbox, error) {
	if strings.ContainsAny(ns+pod, "/\\") || ns == ".." || pod == ".." {
		return nil, fmt.Errorf("invalid pod name")
	}
	b, err := os.ReadFile(filepath.Join(s.stateDir, "sandboxes", ns, pod+".json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pod %s/%s is not running on this node", ns, pod)
		}
		return nil, err
	}
	var sb sandbox
	if err := json.Unmarshal(b, &sb); err != nil {
		return nil, fmt.Errorf("reading the sandbox of %s/%s: %v", ns, pod, err)
	}
	return &sb, nil
}

func (sb *sandbox) container(name string) (*containerSandbox, error) {
	if name == "" {
		name = sb.Default
	}
	c, ok := sb.Containers[name]
	if !ok {
		return nil, fmt.Errorf("container %q not found", name)
	}
	return &c, nil
}

// podRuntime implements upstream's Executor, Attacher and PortForwarder for one pod.
type podRuntime struct {
	sb *sandbox
}

func (r podRuntime) ExecInContainer(ctx context.Context, _ string, _ string, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize, _ time.Duration) error {
	c, err := r.sb.container(container)
	if err != nil {
		return err
	}
	argv := append(append([]string{}, c.Exec...), cmd...)
	p := exec.CommandContext(ctx, argv[0], argv[1:]...)
	p.Stdin, p.Stdout, p.Stderr = in, out, errw
	if out == nil {
		p.Stdout = io.Discard
	}
	if errw == nil {
		p.Stderr = io.Discard
	}
	err = p.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}

// AttachContainer streams the container's output (its log) from now on; the node agent does not
// keep a container's stdin open, so input is not delivered.
func (r podRuntime) AttachContainer(ctx context.Context, _ string, _ string, container string, _ io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize) error {
	c, err := r.sb.container(container)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	f, err := os.Open(c.Log)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	return follow(ctx, f, out)
}

func (r podRuntime) PortForward(ctx context.Context, _ string, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	// Like a container runtime: connect to localhost inside the pod's network namespace, so the
	// server sees a loopback client (Redis's protected mode admits it, as on a real node).
	conn, err := dialInNetns(ctx, r.sb.Netns, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("connecting to port %d of the pod: %v", port, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, stream); closeWrite(conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	<-done
	<-done
	return nil
}

// dialInNetns opens a TCP connection from inside the network namespace at nsPath: the socket is
// created on a thread that has joined the namespace, and stays there after the thread leaves.
func dialInNetns(ctx context.Context, nsPath, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{nil, err}
			runtime.UnlockOSThread()
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			ch <- result{nil, fmt.Errorf("the pod's network namespace: %v", err)}
			runtime.UnlockOSThread()
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("entering the pod's network namespace: %v", err)}
			runtime.UnlockOSThread()
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread stays locked and ends with this goroutine, never reused.
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// follow copies what is appended to f until ctx ends.
func follow(ctx context.Context, f *os.File, out io.Writer) error {
	buf := make([]byte, 32*1024)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return nil
			}
			if fl, ok := out.(http.Flusher); ok {
				fl.Flush()
			}
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// parts splits /<verb>/<ns>/<pod>[/<uid>]/<container> as the kubelet's routes do.
func parts(path, verb string) []string {
	return strings.Split(strings.Trim(strings.TrimPrefix(path, "/"+verb+"/"), "/"), "/")
}

func (s *server) handleExecOrAttach(w http.ResponseWriter, req *http.Request, attach bool) {
	verb := "exec"
	if attach {
		verb = "attach"
	}
	p := parts(req.URL.Path, verb)
	if len(p) != 3 && len(p) != 4 {
		http.Error(w, "expected /"+verb+"/{namespace}/{pod}/{container}", http.StatusBadRequest)
		return
	}
	ns, pod, container := p[0], p[1], p[len(p)-1]
	sb, err := s.sandbox(ns, pod)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if len(p) == 4 && p[2] != sb.UID {
		http.Error(w, "pod not found", http.StatusNotFound)
		return
	}
	opts, err := remotecommand.NewOptions(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rt := podRuntime{sb: sb}
	if attach {
		remotecommand.ServeAttach(w, req, rt, pod, sb.UID, container, opts, idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
		return
	}
	cmd := req.URL.Query()["command"]
	if len(cmd) == 0 {
		http.Error(w, "no command given", http.StatusBadRequest)
		return
	}
	remotecommand.ServeExec(w, req, rt, pod, sb.UID, container, cmd, opts, idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (s *server) handlePortForward(w http.ResponseWriter, req *http.Request) {
	p := parts(req.URL.Path, "portForward")
	if len(p) != 2 && len(p) != 3 {
		http.Error(w, "expected /portForward/{namespace}/{pod}", http.StatusBadRequest)
		return
	}
	sb, err := s.sandbox(p[0], p[1])
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	opts, err := portforward.NewV4Options(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, req, podRuntime{sb: sb}, p[1], sb.UID, opts, idleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

func (s *server) handleLogs(w http.ResponseWriter, req *http.Request) {
	p := parts(req.URL.Path, "containerLogs")
	if len(p) != 3 {
		http.Error(w, "expected /containerLogs/{namespace}/{pod}/{container}", http.StatusBadRequest)
		return
	}
	sb, err := s.sandbox(p[0], p[1])
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	c, err := sb.container(p[2])
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	data, err := os.ReadFile(c.Log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	q := req.URL.Query()
	if t := q.Get("tailLines"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			http.Error(w, "tailLines must be a non-negative integer", http.StatusBadRequest)
			return
		}
		data = tail(data, n)
	}
	if l := q.Get("limitBytes"); l != "" {
		if n, err := strconv.Atoi(l); err == nil && n >= 0 && n < len(data) {
			data = data[:n]
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(data)
	if q.Get("follow") != "true" {
		return
	}
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	f, err := os.Open(c.Log)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(int64(len(data)), io.SeekStart); err != nil {
		return
	}
	_ = follow(req.Context(), f, w)
}

func tail(data []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if data[i] == '\n' {
			n--
			if n == 0 {
				return data[i+1:]
			}
		}
	}
	return data
}

func main() {
	listen := flag.String("listen", "", "address to serve on, host:port")
	cert := flag.String("tls-cert-file", "", "serving certificate (PEM)")
	key := flag.String("tls-private-key-file", "", "serving key (PEM)")
	clientCA := flag.String("client-ca-file", "", "CA that signs the API server's client certificate")
	stateDir := flag.String("state-dir", "", "the node agent's state directory")
	flag.Parse()
	if *listen == "" || *cert == "" || *key == "" || *clientCA == "" || *stateDir == "" {
		log.Fatal("--listen, --tls-cert-file, --tls-private-key-file, --client-ca-file and --state-dir are required")
	}
	caPEM, err := os.ReadFile(*clientCA)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		log.Fatalf("%s holds no PEM certificate", *clientCA)
	}
	s := &server{stateDir: *stateDir}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/", func(w http.ResponseWriter, r *http.Request) { s.handleExecOrAttach(w, r, false) })
	mux.HandleFunc("/attach/", func(w http.ResponseWriter, r *http.Request) { s.handleExecOrAttach(w, r, true) })
	mux.HandleFunc("/portForward/", s.handlePortForward)
	mux.HandleFunc("/containerLogs/", s.handleLogs)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{
		Addr:    *listen,
		Handler: mux,
		TLSConfig: &tls.Config{
			ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs:  pool,
			MinVersion: tls.VersionTLS12,
			// SPDY upgrades need HTTP/1.1.
			NextProtos: []string{"http/1.1"},
		},
		ReadHeaderTimeout: 30 * time.Second,
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	// The supervisor reads this line to learn the port when --listen asked for port 0.
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(srv.ServeTLS(ln, *cert, *key))
}
