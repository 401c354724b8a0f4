//! Mutual TLS to the index: `visync run --once` over https with a client
//! certificate, against the real reference index behind a TLS front on
//! loopback (index-sim speaks plain HTTP; the front is the test's own, with
//! certificates made here by a test CA). A certificate problem stops sending
//! at once and keeps the queue: retrying cannot fix it.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A CA, and a certificate signed by it, as PEM (certificate, key).
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A TLS front on a loopback port that asks for a client certificate from
/// `client_ca` and passes each connection on to `backend`. Returns its
/// address; it runs until the test process ends.
fn tls_front(
    backend: &str,
    server: (String, String),
    client_ca: CertificateDer<'static>,
) -> String {
    let certs = vec![CertificateDer::from_pem_slice(server.0.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(server.1.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_ca).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let backend = backend.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, backend) = (acceptor.clone(), backend.clone());
                tokio::spawn(async move {
                    // A refused handshake just ends the connection.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Ok(mut up) = tokio::net::TcpStream::connect(&backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                    }
                });
            }
        });
    });
    addr
}

/// A config against `url` with the given `[index]` TLS lines.
fn site(dir: &Path, url: &str, tls: &str) -> std::path::PathBuf {
    let watch = dir.join("in");
    std::fs::create_dir_all(&watch).unwrap();
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    let mapping = repo().join("tests/fixtures/cases/csv-codes/mapping.toml");
    let config = dir.join("visync.toml");
    std::fs::write(
        &config,
        format!(
            "[organisation]\ncode = \"{ORG}\"\nname = \"Test\"\n\n[state]\nurl = \"sqlite://state/visync.db\"\n\n\
             [index]\nurl = \"{url}\"\ntoken_file = \"token\"\n{tls}\n\n[[sources]]\nmapping = \"{}\"\nwatch = \"in\"\nsettle_secs = 0\n",
            mapping.display()
        ),
    )
    .unwrap();
    let mut csv =
        String::from("bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir\n");
    for (i, b) in bsns(3).iter().enumerate() {
        csv.push_str(&format!(
            "{b},Jansen,04-03-2012,M,E1,A. Vries,a@x.example,D{i},01-11-2026,,J\n"
        ));
    }
    std::fs::write(watch.join("a.csv"), csv).unwrap();
    config
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn mutual_tls_registers_and_a_certificate_problem_stops_sending() {
    visync::tls::install_provider();
    let sim = Sim::start(&[]);
    let pki = Pki::new("visync test CA");
    let server = pki.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    let front = tls_front(&sim.addr, server, pki.ca_der.clone());
    let url = format!("https://{front}");

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pki.issue(&["visync client"], ExtendedKeyUsagePurpose::ClientAuth);
    let tls = format!(
        "client_cert = \"{}\"\nclient_key = \"{}\"\nca = \"{}\"",
        write(dir.path(), "client.pem", &cert),
        write(dir.path(), "client.key", &key),
        write(dir.path(), "ca.pem", &pki.ca_pem),
    );
    let config = site(dir.path(), &url, &tls);
    let run = visync(&["run", "--once", "-c", config.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("index: 3 confirmed"), "{}", run.stderr);
    assert_eq!(sim.stats()["active_signals"], 3);

    // No client certificate: the index refuses the connection. The pass
    // stops at once (no two minutes of retries), says what to fix, and
    // keeps the queue.
    let dir = tempfile::tempdir().unwrap();
    let tls = format!("ca = \"{}\"", write(dir.path(), "ca.pem", &pki.ca_pem));
    let config = site(dir.path(), &url, &tls);
    let run = visync(&["run", "--once", "-c", config.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("client_cert"), "{}", run.stderr);
    assert!(run.stderr.contains("queue: 3 waiting"), "{}", run.stderr);

    // A certificate from another CA: we refuse the index, for the same
    // reason, and say which setting to check.
    let dir = tempfile::tempdir().unwrap();
    let other = Pki::new("someone else's CA");
    let (cert, key) = pki.issue(&["visync client"], ExtendedKeyUsagePurpose::ClientAuth);
    let tls = format!(
        "client_cert = \"{}\"\nclient_key = \"{}\"\nca = \"{}\"",
        write(dir.path(), "client.pem", &cert),
        write(dir.path(), "client.key", &key),
        write(dir.path(), "ca.pem", &other.ca_pem),
    );
    let config = site(dir.path(), &url, &tls);
    let run = visync(&["run", "--once", "-c", config.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("[index] ca"), "{}", run.stderr);
    assert!(run.stderr.contains("queue: 3 waiting"), "{}", run.stderr);
    assert_eq!(sim.stats()["active_signals"], 3, "nothing else arrived");
}
