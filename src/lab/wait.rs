//! The vocabulary scenarios, end-to-end tests and the tour share for what a flow must bring
//! about: wait until something holds (with a deadline, never a count of polls), and read what
//! the lab's own parts hold.

use std::time::Duration;

use super::Lab;

/// How long a lab waits by default for something a flow should bring about.
pub const WAIT: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(10);

impl Lab {
    /// Polls `probe` until it gives a value, for `within` at most; the error names `what`.
    pub async fn eventually<T>(
        &self,
        what: &str,
        within: Duration,
        mut probe: impl AsyncFnMut(&Lab) -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(v) = probe(self).await? {
                return Ok(v);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("{what}: not within {within:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Monitors the PBX simulator holds, over all its links.
    pub async fn pbx_monitors(&self) -> anyhow::Result<usize> {
        Ok(self
            .pbx()?
            .links()
            .await?
            .iter()
            .map(|l| l.monitors.len())
            .sum())
    }

    /// The sessions our gateway holds (summed over the tier's running gateways); `None` for a
    /// gateway that is not ours.
    pub async fn sessions_held(&self) -> anyhow::Result<Option<usize>> {
        if let Ok(t) = self.tier() {
            let total: f64 = t.sessions().await?.iter().sum();
            return Ok(Some(total as usize));
        }
        match self.gateway() {
            Ok(g) => Ok(Some(g.sessions().await?)),
            Err(_) => Ok(None),
        }
    }

    /// Waits until our gateway holds `sessions` sessions and the PBX simulator `monitors`
    /// monitors; a part the lab does not control is not checked.
    pub async fn until_holding(&self, sessions: usize, monitors: usize) -> anyhow::Result<()> {
        let what = format!("{sessions} gateway session(s) and {monitors} PBX monitor(s)");
        let held = self
            .eventually(&what, Duration::from_secs(5), async |lab| {
                let s = lab.sessions_held().await?;
                let m = match lab.pbx() {
                    Ok(_) => Some(lab.pbx_monitors().await?),
                    Err(_) => None,
                };
                let ok = s.is_none_or(|s| s == sessions) && m.is_none_or(|m| m == monitors);
                Ok(ok.then_some(()))
            })
            .await;
        if held.is_err() {
            let now_s = self.sessions_held().await?;
            let now_m = match self.pbx() {
                Ok(_) => Some(self.pbx_monitors().await?),
                Err(_) => None,
            };
            let show =
                |n: Option<usize>| n.map_or_else(|| "not observable".to_owned(), |n| n.to_string());
            anyhow::bail!(
                "the lab does not hold what it should\nexpected: {sessions} gateway session(s), {monitors} PBX monitor(s)\nactual: {} gateway session(s), {} PBX monitor(s)",
                show(now_s),
                show(now_m)
            );
        }
        Ok(())
    }
}
