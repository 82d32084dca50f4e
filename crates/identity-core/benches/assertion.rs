//! Client assertions: signing a fresh one (PS256, RS256) and handing out the cached one.
//! Run with `cargo bench -p identity-core --bench assertion`.

#![allow(clippy::expect_used, reason = "a benchmark stops at the first failure")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use entra_emulator::certificates::DevCertificate;
use identity_core::CertificateCredential;

fn credential(rs256: bool) -> CertificateCredential {
    let dev = DevCertificate::generate("bench", Duration::from_secs(86400)).expect("certificate");
    let path = std::env::temp_dir().join(format!("idcore-bench-{}-{rs256}.pem", std::process::id()));
    std::fs::write(&path, dev.key_pem() + &dev.cert_pem()).expect("write");
    let credential = CertificateCredential::from_file(&path, None).expect("load");
    let _ = std::fs::remove_file(&path);
    if rs256 {
        credential.with_rs256()
    } else {
        credential
    }
}

fn assertions(c: &mut Criterion) {
    for (name, rs256) in [("PS256", false), ("RS256", true)] {
        let credential = credential(rs256);
        let mut flip = false;
        // Alternating audiences defeats the reuse, so every call signs.
        c.bench_function(&format!("sign a fresh assertion ({name})"), |b| {
            b.iter(|| {
                flip = !flip;
                black_box(credential.assertion(
                    "client",
                    if flip {
                        "https://a/token"
                    } else {
                        "https://b/token"
                    },
                ))
            })
        });
        c.bench_function(&format!("reuse the cached assertion ({name})"), |b| {
            b.iter(|| black_box(credential.assertion("client", "https://a/token")))
        });
    }
}

criterion_group!(benches, assertions);
criterion_main!(benches);
