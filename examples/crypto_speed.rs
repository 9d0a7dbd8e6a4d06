//! Seal/open throughput of the object encryption on one core, and the Argon2id cost of one
//! password check with the calibrated parameters. Run by `benches/crypto.sh` and
//! `benches/s3_encrypted.sh` (release build). Prints one line per figure; exits 1 when a round
//! trip does not give back the same bytes.
//!
//! Throughput is given per second of wall time and per second of this thread's own CPU time
//! (`work_time`: `/proc/thread-self/schedstat`, nanoseconds on a CPU): on a machine shared with other work
//! the wall time counts the time the thread waited for a core, the CPU time does not, so the
//! second is the figure for "one core".

use std::time::{Duration, Instant};

use matterbak::blobs::crypto::{KdfParams, KeyObject, MasterKey, sealed_len, work_time};

/// Runs `f`, returning its wall time and CPU time.
fn timed(f: impl FnOnce()) -> (Duration, Duration) {
    let start = Instant::now();
    let cpu = work_time(f);
    (start.elapsed(), cpu)
}

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(512);
    let plain: Vec<u8> = (0..mib << 20).map(|i| (i * 131 % 251) as u8).collect();
    let sealer = MasterKey::generate().sealer();

    // Correctness first (and every page of both buffers touched, so the timed runs below
    // measure the cipher, not the kernel handing out fresh memory).
    let mut sealed = Vec::with_capacity(sealed_len(plain.len() as u64) as usize);
    sealer
        .seal("bench", &mut &plain[..], &mut sealed)
        .expect("seal into memory");
    let mut opened = Vec::with_capacity(plain.len());
    std::io::copy(&mut sealer.open("bench", &sealed[..]), &mut opened).expect("open");
    if opened != plain || sealed.len() as u64 != sealed_len(plain.len() as u64) {
        eprintln!("round trip FAILED");
        std::process::exit(1);
    }
    drop(opened);
    // Three timed runs each, the one with the least CPU time kept: sealing into the (reused)
    // buffer, opening into a sink as an upload's or a download's stream is.
    let fastest = |runs: Vec<(Duration, Duration)>| runs.into_iter().min_by_key(|r| r.1);
    let seal = (0..3)
        .map(|_| {
            sealed.clear();
            timed(|| {
                sealer
                    .seal("bench", &mut &plain[..], &mut sealed)
                    .expect("seal into memory");
            })
        })
        .collect();
    let seal = fastest(seal).expect("three runs");
    let open = (0..3)
        .map(|_| {
            timed(|| {
                let reader = &mut sealer.open("bench", &sealed[..]);
                let n = std::io::copy(reader, &mut std::io::sink()).expect("open");
                assert_eq!(n, plain.len() as u64, "opened length");
            })
        })
        .collect();
    let open = fastest(open).expect("three runs");
    let gbs = |d: Duration| plain.len() as f64 / d.as_secs_f64() / 1e9;
    for (what, (wall, cpu)) in [("seal", seal), ("open", open)] {
        println!(
            "{what} {mib} MiB (XChaCha20-Poly1305, 1 MiB chunks), fastest of 3: {:.2} s wall = {:.2} GB/s; {:.2} s on the CPU = {:.2} GB/s per core",
            wall.as_secs_f64(),
            gbs(wall),
            cpu.as_secs_f64(),
            gbs(cpu)
        );
    }

    // Adding a key: calibration trials with the key's own salt, the last one the wrapping
    // key (KeyObject::wrap_calibrated), timed whole; then one password check.
    let master = MasterKey::generate();
    let mut added = None;
    let (adding, adding_cpu) = timed(|| {
        added = Some(
            KeyObject::wrap_calibrated(
                &master,
                b"bench",
                Duration::from_millis(500),
                KeyObject::new_id(),
                "bench",
                0,
            )
            .expect("wrap"),
        );
    });
    let (key, _) = added.expect("wrapped above");
    let params = key.params;
    let (check, check_cpu) = timed(|| {
        let back = key.unwrap(b"bench").expect("unwrap");
        if back != master {
            eprintln!("key round trip FAILED");
            std::process::exit(1);
        }
    });
    if params.t_cost < KdfParams::OWASP_MIN.t_cost || params.m_cost < KdfParams::OWASP_MIN.m_cost {
        eprintln!("calibrated parameters {params:?} are below OWASP's minimum");
        std::process::exit(1);
    }
    println!(
        "argon2id calibrated: m = {} KiB, t = {}, p = {}; adding the key (calibration trials, the last one the wrap) {:.2} s wall, {:.2} s on the CPU; one password check {:.2} s wall, {:.2} s on the CPU",
        params.m_cost,
        params.t_cost,
        params.p_cost,
        adding.as_secs_f64(),
        adding_cpu.as_secs_f64(),
        check.as_secs_f64(),
        check_cpu.as_secs_f64()
    );
}
