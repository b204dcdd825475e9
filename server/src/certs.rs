//! `meridian certs DIR --nodes a,b,c`: a cluster CA and one certificate per node, so a mesh
//! needs no openssl incantations (like `cockroach cert`).
//!
//! Files: `ca.pem` / `ca.key` (keep the key offline once the certificates exist), and
//! `<node>.pem` / `<node>.key` for each node. A node certificate names the node (common name
//! and DNS name) and carries the name every dialler asks for (`meridian-peer`, see
//! `replication::tls::PEER_NAME`), so peers may be dialled by any address; it serves as TLS
//! server and client both (mutual TLS). The cluster id is the certificates' organisational unit.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use std::path::Path;

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Bad arguments.
    #[error("{0}\nusage: meridian certs DIR --nodes a,b,c [--cluster-id ID]")]
    Usage(String),
    /// Key or certificate generation failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Runs `meridian certs` with its arguments (after `certs`).
pub fn run(args: &[String]) -> Result<String, CertError> {
    let mut dir = None;
    let (mut nodes, mut cluster) = (Vec::new(), "meridian".to_string());
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--nodes" => {
                let list = args.get(i + 1).ok_or_else(|| CertError::Usage("--nodes needs a list".into()))?;
                nodes = list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect();
                i += 2;
            }
            "--cluster-id" => {
                cluster = args.get(i + 1).ok_or_else(|| CertError::Usage("--cluster-id needs a value".into()))?.clone();
                i += 2;
            }
            arg if !arg.starts_with("--") && dir.is_none() => {
                dir = Some(arg.to_string());
                i += 1;
            }
            other => return Err(CertError::Usage(format!("unexpected argument '{other}'"))),
        }
    }
    let dir = dir.ok_or_else(|| CertError::Usage("missing DIR".into()))?;
    if nodes.is_empty() {
        return Err(CertError::Usage("missing --nodes".into()));
    }
    generate(Path::new(&dir), &nodes, &cluster)?;
    Ok(format!("wrote ca.pem, ca.key and a certificate and key for {} in {dir}", nodes.join(", ")))
}

/// Writes a CA and a certificate per node into `dir`.
pub fn generate(dir: &Path, nodes: &[String], cluster: &str) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io { path: dir.display().to_string(), source })?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, format!("Meridian cluster {cluster} CA"));
    ca_params.distinguished_name.push(DnType::OrganizationalUnitName, cluster);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate()?;
    write(dir, "ca.key", &ca_key.serialize_pem(), true)?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;
    write(dir, "ca.pem", &ca.pem(), false)?;
    for node in nodes {
        let mut params = CertificateParams::new(vec![node.clone(), crate::replication::tls::PEER_NAME.into()])?;
        params.distinguished_name.push(DnType::CommonName, node.as_str());
        params.distinguished_name.push(DnType::OrganizationalUnitName, cluster);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        write(dir, &format!("{node}.pem"), &cert.pem(), false)?;
        write(dir, &format!("{node}.key"), &key.serialize_pem(), true)?;
    }
    Ok(())
}

fn write(dir: &Path, name: &str, contents: &str, secret: bool) -> Result<(), CertError> {
    let path = dir.join(name);
    let io = |source| CertError::Io { path: path.display().to_string(), source };
    std::fs::write(&path, contents).map_err(io)?;
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}
