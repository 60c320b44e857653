//! The HTML report of a scenario run: a summary table, then per scenario a ladder diagram of
//! every SIP and CSTA message between the clients, the Front End, the gateway and the PBX. Click
//! an arrow to read the message.

use std::fmt::Write as _;

/// One message on a ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    /// Wall-clock time, microseconds since the Unix epoch.
    pub at_us: u64,
    /// Sender lane.
    pub from: String,
    /// Receiver lane.
    pub to: String,
    /// Short label (start line, CSTA root).
    pub label: String,
    /// The whole message.
    pub text: String,
}

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every step passed.
    Passed,
    /// A step failed (its message).
    Failed(String),
    /// Not run, with the reason (for example: needs PBX-side injection on an external PBX).
    Skipped(String),
}

/// One scenario's result and ladder.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    /// Feature name.
    pub feature: String,
    /// Scenario name.
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// Duration in milliseconds.
    pub millis: u128,
    /// Messages, in time order.
    pub arrows: Vec<Arrow>,
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn lanes(arrows: &[Arrow]) -> Vec<String> {
    let fixed = ["Front End", "gateway", "PBX"];
    let mut clients: Vec<String> = Vec::new();
    for a in arrows {
        for who in [&a.from, &a.to] {
            if !fixed.contains(&who.as_str()) && !clients.contains(who) {
                clients.push(who.clone());
            }
        }
    }
    clients.extend(fixed.iter().map(|s| (*s).to_owned()));
    clients
}

fn ladder_svg(id: usize, arrows: &[Arrow]) -> String {
    let lanes = lanes(arrows);
    let lane_w = 170;
    let row_h = 22;
    let top = 30;
    let width = lanes.len() * lane_w;
    let height = top + arrows.len() * row_h + 20;
    let x = |lane: &str| lanes.iter().position(|l| l == lane).unwrap_or(0) * lane_w + lane_w / 2;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="ladder" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="message ladder">"#
    );
    for l in &lanes {
        let lx = x(l);
        let _ = write!(
            svg,
            r#"<text x="{lx}" y="16" text-anchor="middle" class="lane">{}</text><line x1="{lx}" y1="22" x2="{lx}" y2="{height}" class="life"/>"#,
            esc(l)
        );
    }
    let t0 = arrows.first().map_or(0, |a| a.at_us);
    for (i, a) in arrows.iter().enumerate() {
        let y = top + i * row_h + 12;
        let (x1, x2) = (x(&a.from), x(&a.to));
        let head = if x2 >= x1 { x2 - 6 } else { x2 + 6 };
        let mid = (x1 + x2) / 2;
        let ms = (a.at_us.saturating_sub(t0)) as f64 / 1000.0;
        let _ = write!(
            svg,
            r##"<a href="#m{id}-{i}" class="msg" data-msg="m{id}-{i}"><line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" class="arrow"/><polygon points="{x2},{y} {head},{} {head},{}" class="head"/><text x="{mid}" y="{}" text-anchor="middle" class="label">{}</text><title>+{ms:.1} ms</title></a>"##,
            y - 4,
            y + 4,
            y - 3,
            esc(&a.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The report page.
pub fn html(title: &str, scenarios: &[ScenarioReport]) -> String {
    let passed = scenarios
        .iter()
        .filter(|s| s.status == Status::Passed)
        .count();
    let failed = scenarios
        .iter()
        .filter(|s| matches!(s.status, Status::Failed(_)))
        .count();
    let skipped = scenarios.len() - passed - failed;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t}</title><style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}
table.summary{{border-collapse:collapse}} .summary td,.summary th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}
.passed{{color:#176d2c}} .failed{{color:#b00020;font-weight:bold}} .skipped{{color:#8a6d00}}
svg.ladder{{font-size:11px;background:#fafafa;border:1px solid #ddd}} .life{{stroke:#bbb}} .arrow{{stroke:#345}} .head{{fill:#345}}
.lane{{font-weight:bold}} .msg:hover .arrow{{stroke:#d60}} .msg:hover .label{{fill:#d60}}
pre{{background:#f4f4f4;padding:.5em;overflow:auto;max-height:30em}} details.open-target{{outline:2px solid #d60}}
</style></head><body><h1>{t}</h1>
<p id="totals">{total} scenarios: <span class="passed">{passed} passed</span>, <span class="failed">{failed} failed</span>, <span class="skipped">{skipped} not run</span></p>
<table class="summary"><tr><th>Feature</th><th>Scenario</th><th>Result</th><th>Time</th></tr>"#,
        t = esc(title),
        total = scenarios.len()
    );
    for (i, s) in scenarios.iter().enumerate() {
        let (class, text) = match &s.status {
            Status::Passed => ("passed", "passed".to_owned()),
            Status::Failed(e) => ("failed", format!("failed: {e}")),
            Status::Skipped(r) => ("skipped", format!("not run: {r}")),
        };
        let _ = write!(
            h,
            r##"<tr class="row {class}"><td>{}</td><td><a href="#s{i}">{}</a></td><td class="{class}">{}</td><td>{} ms</td></tr>"##,
            esc(&s.feature),
            esc(&s.name),
            esc(&text),
            s.millis
        );
    }
    h.push_str("</table>");
    for (i, s) in scenarios.iter().enumerate() {
        let _ = write!(
            h,
            r#"<section class="scenario" id="s{i}"><h2>{} — {}</h2><p>{} messages</p>{}"#,
            esc(&s.feature),
            esc(&s.name),
            s.arrows.len(),
            ladder_svg(i, &s.arrows)
        );
        for (j, a) in s.arrows.iter().enumerate() {
            let _ = write!(
                h,
                r#"<details id="m{i}-{j}"><summary>{} → {}: {}</summary><pre>{}</pre></details>"#,
                esc(&a.from),
                esc(&a.to),
                esc(&a.label),
                esc(&a.text)
            );
        }
        h.push_str("</section>");
    }
    h.push_str(
        r#"<script>
function openTarget(){var id=location.hash.slice(1);var d=document.getElementById(id);
if(d&&d.tagName==='DETAILS'){d.open=true;d.classList.add('open-target');}}
window.addEventListener('hashchange',openTarget);openTarget();
document.body.dataset.ready='yes';
</script></body></html>"#,
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_counts() {
        let s = ScenarioReport {
            feature: "F".into(),
            name: "a <b>".into(),
            status: Status::Failed("x & y".into()),
            millis: 3,
            arrows: vec![Arrow {
                at_us: 1,
                from: "alice/desk".into(),
                to: "Front End".into(),
                label: "INVITE (RequestSystemStatus)".into(),
                text: "<xml/>".into(),
            }],
        };
        let page = html("T", &[s]);
        assert!(page.contains("a &lt;b&gt;"));
        assert!(page.contains("failed: x &amp; y"));
        assert!(page.contains("1 scenarios: <span class=\"passed\">0 passed</span>"));
        assert!(page.contains(r##"href="#m0-0""##));
        assert!(page.contains("&lt;xml/&gt;"));
    }
}
