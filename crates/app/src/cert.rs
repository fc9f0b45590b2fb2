//! `ingot cert self-signed`: a development certificate and key (PEM) for the HTTP and MQTT
//! TLS listeners. Clients trust it by pinning the certificate itself (`curl --cacert`,
//! `mosquitto_pub --cafile`, paho's `tls_set(ca_certs=...)`); it is not for production,
//! where a certificate from a real CA goes in the same two files.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The names a development certificate covers when none are given.
pub const DEFAULT_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Writes `cert.pem` and `key.pem` (mode 0600) into `dir`, valid for `hosts` (DNS names
/// or IP addresses), and returns their paths. Refuses to overwrite existing files.
pub fn self_signed(dir: &Path, hosts: &[String]) -> anyhow::Result<(PathBuf, PathBuf)> {
    if hosts.is_empty() {
        anyhow::bail!("--host: at least one name or address is needed");
    }
    let certified = rcgen::generate_simple_self_signed(hosts.to_vec()).context(
        "cannot generate the certificate (is every --host a DNS name or an IP address?)",
    )?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    write_new(&cert, certified.cert.pem().as_bytes(), 0o644)?;
    write_new(
        &key,
        certified.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    Ok((cert, key))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create {} (it is never overwritten: remove it first)",
            path.display()
        )
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_pair_that_rustls_loads_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let hosts: Vec<String> = DEFAULT_HOSTS.map(String::from).into();
        let (cert, key) = self_signed(dir.path(), &hosts).unwrap();
        assert!(
            std::fs::read_to_string(&cert)
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        ingot_adapter_mqtt::tls_server_config(&cert, &key).expect("a usable pair");
        let again = self_signed(dir.path(), &hosts).unwrap_err();
        assert!(
            format!("{again:#}").contains("never overwritten"),
            "{again:#}"
        );
    }

    #[test]
    fn refuses_an_empty_host_list() {
        let dir = tempfile::tempdir().unwrap();
        let error = self_signed(dir.path(), &[]).unwrap_err();
        assert!(error.to_string().contains("--host"));
    }
}
