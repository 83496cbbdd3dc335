//! The tokio half of pollux's sync comparison (bench/sync_compare.sh):
//! ns per operation, one task on a current-thread runtime, uncontended.
//! Prints one line per operation: `name ns_per_op`, the median of ROUNDS.
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, Mutex, Notify, Semaphore};

const N: u64 = 2_000_000;
const ROUNDS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<F: FnMut()>(mut f: F) -> f64 {
    let mut v = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        f();
        v.push(start.elapsed().as_nanos() as f64 / N as f64);
    }
    median(v)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let bounded = time(|| {
        rt.block_on(async {
            let (tx, mut rx) = mpsc::channel::<u64>(1024);
            for i in 0..N {
                tx.send(i).await.unwrap();
                std::hint::black_box(rx.recv().await.unwrap());
            }
        })
    });
    println!("mpsc_bounded_send_recv {:.1}", bounded);
    let unbounded = time(|| {
        rt.block_on(async {
            let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
            for i in 0..N {
                tx.send(i).unwrap();
                std::hint::black_box(rx.recv().await.unwrap());
            }
        })
    });
    println!("mpsc_unbounded_send_recv {:.1}", unbounded);
    let os = time(|| {
        rt.block_on(async {
            for i in 0..N {
                let (tx, rx) = oneshot::channel::<u64>();
                tx.send(i).unwrap();
                std::hint::black_box(rx.await.unwrap());
            }
        })
    });
    println!("oneshot_create_send_recv {:.1}", os);
    let mutex = time(|| {
        rt.block_on(async {
            let m = Mutex::new(0u64);
            for _ in 0..N {
                let mut g = m.lock().await;
                *g += 1;
            }
            std::hint::black_box(*m.lock().await);
        })
    });
    println!("mutex_lock_unlock {:.1}", mutex);
    let sem = time(|| {
        rt.block_on(async {
            let s = Semaphore::new(1);
            for _ in 0..N {
                let p = s.acquire().await.unwrap();
                drop(std::hint::black_box(p));
            }
        })
    });
    println!("semaphore_acquire_release {:.1}", sem);
    let notify = time(|| {
        rt.block_on(async {
            let n = Notify::new();
            for _ in 0..N {
                n.notify_one();
                n.notified().await;
            }
        })
    });
    println!("notify_one_then_notified {:.1}", notify);
}
