//! Seal/open throughput of the object encryption on one core, and the Argon2id cost of one
//! password check with the calibrated parameters. Run by `benches/crypto.sh` (release build).
//! Prints one line per figure; exits 1 when a round trip does not give back the same bytes.

use std::time::Instant;

use matterbak::blobs::crypto::{KdfParams, KeyObject, MasterKey, calibrate, sealed_len};

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(512);
    let plain: Vec<u8> = (0..mib << 20).map(|i| (i * 131 % 251) as u8).collect();
    let sealer = MasterKey::generate().sealer();

    let start = Instant::now();
    let mut sealed = Vec::with_capacity(sealed_len(plain.len() as u64) as usize);
    sealer
        .seal("bench", &mut &plain[..], &mut sealed)
        .expect("seal into memory");
    let seal = start.elapsed();

    let start = Instant::now();
    let mut opened = Vec::with_capacity(plain.len());
    std::io::copy(&mut sealer.open("bench", &sealed[..]), &mut opened).expect("open");
    let open = start.elapsed();

    if opened != plain || sealed.len() as u64 != sealed_len(plain.len() as u64) {
        eprintln!("round trip FAILED");
        std::process::exit(1);
    }
    let gbs = |d: std::time::Duration| plain.len() as f64 / d.as_secs_f64() / 1e9;
    println!(
        "seal {mib} MiB: {:.2} s = {:.2} GB/s",
        seal.as_secs_f64(),
        gbs(seal)
    );
    println!(
        "open {mib} MiB: {:.2} s = {:.2} GB/s",
        open.as_secs_f64(),
        gbs(open)
    );

    let (params, took) = calibrate(std::time::Duration::from_millis(500));
    let master = MasterKey::generate();
    let key = KeyObject::wrap(&master, b"bench", params, "bench", 0).expect("wrap");
    let start = Instant::now();
    let back = key.unwrap(b"bench").expect("unwrap");
    let check = start.elapsed();
    if back != master || params.t_cost < KdfParams::OWASP_MIN.t_cost {
        eprintln!("key round trip FAILED");
        std::process::exit(1);
    }
    println!(
        "argon2id calibrated: m = {} KiB, t = {}, p = {} ({:.2} s in calibration); one password check {:.2} s",
        params.m_cost,
        params.t_cost,
        params.p_cost,
        took.as_secs_f64(),
        check.as_secs_f64()
    );
}
