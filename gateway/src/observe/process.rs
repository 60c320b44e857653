//! What only the running process can tell, encoded at each scrape: the standard `process_*`
//! metrics from `/proc` (CPU, resident memory, open and allowed file descriptors, start time)
//! and the seconds left on the SIP TLS certificate.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The collector.
#[derive(Debug)]
pub struct ProcessCollector {
    /// End of validity of the SIP listener's certificate (Unix seconds; `i64::MIN` without
    /// TLS), replaced when a reload brings a new certificate.
    pub certificate_not_after: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> std::fmt::Result {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        if let Ok(me) = procfs::process::Process::myself() {
            if let Ok(stat) = me.stat() {
                let ticks = procfs::ticks_per_second() as f64;
                let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / ticks);
                cpu.encode(encoder.encode_descriptor(
                    "process_cpu_seconds",
                    "User and system CPU time spent, seconds",
                    None,
                    cpu.metric_type(),
                )?)?;
                let rss = stat.rss.saturating_mul(procfs::page_size());
                gauge(
                    &mut encoder,
                    "process_resident_memory_bytes",
                    "Resident memory, bytes",
                    rss as f64,
                )?;
                if let Ok(boot) = procfs::boot_time_secs() {
                    let start = boot as f64 + stat.starttime as f64 / ticks;
                    gauge(
                        &mut encoder,
                        "process_start_time_seconds",
                        "Start time of the process since the Unix epoch, seconds",
                        start,
                    )?;
                }
            }
            if let Ok(n) = me.fd_count() {
                gauge(
                    &mut encoder,
                    "process_open_fds",
                    "Open file descriptors",
                    n as f64,
                )?;
            }
            if let Ok(limits) = me.limits()
                && let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit
            {
                gauge(
                    &mut encoder,
                    "process_max_fds",
                    "File descriptors the process may open (soft limit)",
                    max as f64,
                )?;
            }
        }
        let not_after = self
            .certificate_not_after
            .load(std::sync::atomic::Ordering::Relaxed);
        if not_after != i64::MIN {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            gauge(
                &mut encoder,
                "rcc_gateway_tls_certificate_expiry_seconds",
                "Seconds until the SIP listener's certificate expires (negative: expired)",
                (not_after - now) as f64,
            )?;
        }
        Ok(())
    }
}
