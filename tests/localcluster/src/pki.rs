//! The cluster's certificates, as kubeadm lays them out: one CA signs the API server's serving
//! certificate, a client certificate per identity (the admin in `system:masters`, the controller
//! manager, the scheduler, each node), the API server's client certificate towards kubelets and the
//! node agent's serving certificate; plus the service-account signing key.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate and its key, as PEM files on disk.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Everything the components need, under `<state-dir>/pki`.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    ca_issuer: CertifiedIssuer<'static, KeyPair>,
    pub apiserver: CertFiles,
    pub apiserver_kubelet_client: CertFiles,
    pub kubelet_serving: CertFiles,
    /// The service-account signing key (private) and its public key (what verifies tokens).
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
}

impl Pki {
    /// `gateway` is the address the node agent serves the kubelet API on; `service_ip` the
    /// ClusterIP of `kubernetes.default`.
    pub fn create(dir: &Path, gateway: Ipv4Addr, service_ip: Ipv4Addr) -> Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut params = CertificateParams::new(Vec::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "localcluster-ca");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let ca_key = KeyPair::generate()?;
        // The controller manager's CSR signer needs the CA key as a file.
        write_private(&dir.join("ca.key"), &ca_key.serialize_pem())?;
        let ca_issuer = CertifiedIssuer::self_signed(params, ca_key)?;
        let ca = dir.join("ca.crt");
        write_private(&ca, &ca_issuer.pem())?;

        let mut pki = Pki {
            dir: dir.to_path_buf(),
            ca,
            ca_issuer,
            apiserver: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            apiserver_kubelet_client: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            kubelet_serving: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            service_account_key: dir.join("sa.key"),
            service_account_pub: dir.join("sa.pub"),
        };
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        pki.apiserver = pki.issue_files(
            "apiserver",
            "kube-apiserver",
            &[],
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            &[loopback, IpAddr::V4(gateway), IpAddr::V4(service_ip)],
            Usage::Server,
        )?;
        pki.apiserver_kubelet_client = pki.issue_files(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            &["system:masters"],
            &[],
            &[],
            Usage::Client,
        )?;
        pki.kubelet_serving = pki.issue_files(
            "kubelet",
            "localcluster-node-agent",
            &[],
            &["localhost"],
            &[loopback, IpAddr::V4(gateway)],
            Usage::Server,
        )?;
        let sa = KeyPair::generate()?;
        write_private(&pki.service_account_key, &sa.serialize_pem())?;
        write_private(&pki.service_account_pub, &sa.public_key_pem())?;
        Ok(pki)
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_issuer.pem()
    }

    /// A client certificate for `user` in `groups`, as PEM (certificate, key).
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<(String, String)> {
        self.issue(user, groups, &[], &[], Usage::Client)
    }

    /// A kubeconfig that authenticates with a new client certificate for `user` in `groups`.
    pub fn kubeconfig(&self, server: &str, user: &str, groups: &[&str]) -> Result<String> {
        let (cert, key) = self.client_cert(user, groups)?;
        Ok(self.kubeconfig_with(server, user, &cert, &key))
    }

    /// A kubeconfig with the given client certificate, everything embedded (it stays valid
    /// when copied elsewhere).
    pub fn kubeconfig_with(&self, server: &str, user: &str, cert: &str, key: &str) -> String {
        self.kubeconfig_for_user(
            server,
            user,
            &format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64(cert),
                b64(key)
            ),
        )
    }

    /// A kubeconfig that authenticates with a bearer token.
    pub fn token_kubeconfig(&self, server: &str, user: &str, token: &str) -> String {
        self.kubeconfig_for_user(server, user, &format!("    token: {token}\n"))
    }

    fn kubeconfig_for_user(&self, server: &str, user: &str, credentials: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: localcluster\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: localcluster\n  context:\n    cluster: localcluster\n    user: {user}\n    namespace: default\ncurrent-context: localcluster\nusers:\n- name: {user}\n  user:\n{credentials}preferences: {{}}\n",
            ca = b64(&self.ca_issuer.pem()),
        )
    }

    fn issue_files(
        &self,
        file: &str,
        cn: &str,
        groups: &[&str],
        dns: &[&str],
        ips: &[IpAddr],
        usage: Usage,
    ) -> Result<CertFiles> {
        let (cert, key) = self.issue(cn, groups, dns, ips, usage)?;
        let files = CertFiles {
            cert: self.dir.join(format!("{file}.crt")),
            key: self.dir.join(format!("{file}.key")),
        };
        write_private(&files.cert, &cert)?;
        write_private(&files.key, &key)?;
        Ok(files)
    }

    fn issue(
        &self,
        cn: &str,
        groups: &[&str],
        dns: &[&str],
        ips: &[IpAddr],
        usage: Usage,
    ) -> Result<(String, String)> {
        let mut params = CertificateParams::new(Vec::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        // Kubernetes reads group membership from the Organization attributes.
        for g in groups {
            params.distinguished_name.push(DnType::OrganizationName, *g);
        }
        for d in dns {
            params
                .subject_alt_names
                .push(SanType::DnsName((*d).try_into()?));
        }
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca_issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[derive(Clone, Copy)]
enum Usage {
    Server,
    Client,
}

/// Writes a file readable by its owner only (keys, and certificates beside them).
pub(crate) fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
