//! The HTML report of a run: the conformance summary by capability, a table of scenarios,
//! then per scenario its steps, its failure, and a ladder of every SIP and CSTA message between
//! the clients, the Front End, the gateway and the PBX: numbered, with the time since the
//! scenario's first message, each step's messages marked. Click an arrow to read the message
//! (CSTA XML indented).

use std::fmt::Write as _;

use super::{Arrow, ScenarioReport, Status, StepOutcome, StepReport};
use crate::conformance::{Conformance, Verdict};

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

const LANE_W: usize = 170;
const ROW_H: usize = 22;
/// Left margin: message number and time.
const GUTTER: usize = 90;
/// About how many label characters fit in one lane at the ladder's font size.
const CHARS_PER_LANE: usize = 26;

/// A label cut to the span of its arrow, so that it never runs over the next lane.
fn fit(label: &str, lanes_spanned: usize) -> String {
    let room = CHARS_PER_LANE * lanes_spanned.max(1);
    if label.chars().count() <= room {
        return label.to_owned();
    }
    let mut cut: String = label.chars().take(room.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Rows of a ladder: a step's mark before the first message sent after the step started.
enum Row<'a> {
    Step(&'a StepReport),
    Message(usize, &'a Arrow),
}

fn rows<'a>(arrows: &'a [Arrow], steps: &'a [StepReport]) -> Vec<Row<'a>> {
    let mut started: Vec<&StepReport> = steps.iter().filter(|s| s.started_us > 0).collect();
    started.sort_by_key(|s| s.started_us);
    let mut out = Vec::new();
    let mut next = started.iter().peekable();
    for (i, a) in arrows.iter().enumerate() {
        while let Some(s) = next.next_if(|s| s.started_us <= a.at_us) {
            out.push(Row::Step(s));
        }
        out.push(Row::Message(i, a));
    }
    out.extend(next.map(|s| Row::Step(s)));
    out
}

fn ladder_svg(id: &str, arrows: &[Arrow], steps: &[StepReport]) -> String {
    let lanes = lanes(arrows);
    let rows = rows(arrows, steps);
    let top = 30;
    let width = GUTTER + lanes.len() * LANE_W;
    let height = top + rows.len() * ROW_H + 20;
    let lane_of = |lane: &str| lanes.iter().position(|l| l == lane).unwrap_or(0);
    let x = |lane: &str| GUTTER + lane_of(lane) * LANE_W + LANE_W / 2;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="ladder" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="message ladder">"#
    );
    let _ = write!(
        svg,
        r#"<text x="4" y="16" class="lane">#</text><text x="{}" y="16" text-anchor="end" class="lane">ms</text>"#,
        GUTTER - 8
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
    for (r, row) in rows.iter().enumerate() {
        let y = top + r * ROW_H + 12;
        match row {
            Row::Step(s) => {
                let _ = write!(
                    svg,
                    r#"<line x1="0" y1="{y}" x2="{width}" y2="{y}" class="step-rule"/><text x="{}" y="{}" class="step {}">{}</text>"#,
                    GUTTER + 4,
                    y - 3,
                    outcome_class(s.outcome),
                    esc(&format!("{}{}", s.keyword, s.text))
                );
            }
            Row::Message(i, a) => {
                let (x1, x2) = (x(&a.from), x(&a.to));
                let head = if x2 >= x1 { x2 - 6 } else { x2 + 6 };
                let mid = (x1 + x2) / 2;
                let span = lane_of(&a.from).abs_diff(lane_of(&a.to));
                let ms = (a.at_us.saturating_sub(t0)) as f64 / 1000.0;
                let n = i + 1;
                let _ = write!(
                    svg,
                    r##"<a href="#{id}-m{i}" class="msg" data-msg="{id}-m{i}"><text x="4" y="{}" class="num">{n}</text><text x="{}" y="{}" text-anchor="end" class="time">{ms:.1}</text><line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" class="arrow"/><polygon points="{x2},{y} {head},{} {head},{}" class="head"/><text x="{mid}" y="{}" text-anchor="middle" class="label">{}</text><title>{n}. +{ms:.1} ms {}</title></a>"##,
                    y + 4,
                    GUTTER - 8,
                    y + 4,
                    y - 4,
                    y + 4,
                    y - 3,
                    esc(&fit(&a.label, span)),
                    esc(&a.label)
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

fn outcome_class(o: StepOutcome) -> &'static str {
    match o {
        StepOutcome::Passed => "passed",
        StepOutcome::Failed => "failed",
        StepOutcome::Skipped => "skipped",
    }
}

/// A message for reading: a SIP message's CSTA body (or a bare CSTA frame) indented, one
/// element per line. Text that is not well-formed XML is shown as it is.
pub fn readable(text: &str) -> String {
    let (head, body) = match text.find("\r\n\r\n") {
        Some(i) => (&text[..i + 4], &text[i + 4..]),
        None if text.trim_start().starts_with('<') => ("", text),
        None => return text.to_owned(),
    };
    if !body.trim_start().starts_with('<') {
        return text.to_owned();
    }
    match indent_xml(body) {
        Some(pretty) => format!("{}{pretty}", head.replace("\r\n", "\n")),
        None => text.to_owned(),
    }
}

fn indent_xml(xml: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    loop {
        match reader.read_event().ok()? {
            Event::Eof => break,
            e => writer.write_event(e).ok()?,
        }
    }
    String::from_utf8(writer.into_inner()).ok()
}

fn conformance_section(c: &Conformance) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<section id="conformance"><h2>Conformance by capability</h2><table class="facts">
<tr><th>Gateway</th><td>{}</td></tr><tr><th>PBX</th><td>{}</td></tr><tr><th>Lync side</th><td>{}</td></tr>
<tr><th>rcc-lab</th><td>{}</td></tr><tr><th>Date</th><td>{}</td></tr><tr><th>Duration</th><td>{:.1} s</td></tr><tr><th>Tags</th><td>{}</td></tr></table>
<table class="summary capabilities"><tr><th>Capability</th><th>Result</th><th>Reason</th><th>Evidence</th></tr>"#,
        esc(&c.topology.gateway),
        esc(&c.topology.pbx),
        esc(&c.topology.front_end),
        esc(c.rcc_lab_version),
        esc(&c.date),
        c.duration_s,
        esc(c.tags.as_deref().unwrap_or("(all)")),
    );
    for cap in &c.capabilities {
        let class = match cap.verdict {
            Verdict::Pass => "passed",
            Verdict::Fail => "failed",
            Verdict::NotApplicable | Verdict::NotRun => "skipped",
        };
        let links: Vec<String> = cap
            .evidence
            .iter()
            .map(|e| {
                format!(
                    r#"<a href="{}" class="{}" title="{}">{}</a>"#,
                    esc(e.report.trim_start_matches("index.html")),
                    e.status,
                    esc(&e.scenario),
                    esc(&e.location)
                )
            })
            .collect();
        let _ = write!(
            h,
            r#"<tr class="capability {class}" data-capability="{}"><td>{}</td><td class="{class}">{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(cap.id),
            esc(cap.title),
            cap.verdict.word(),
            esc(&cap.reason),
            links.join(" ")
        );
    }
    h.push_str("</table></section>");
    h
}

fn steps_list(steps: &[StepReport]) -> String {
    let mut h = String::from(r#"<ol class="steps">"#);
    for s in steps {
        let _ = write!(
            h,
            r#"<li class="{}">{}{}</li>"#,
            outcome_class(s.outcome),
            esc(&s.keyword),
            esc(&s.text)
        );
    }
    h.push_str("</ol>");
    h
}

/// A failure's text, with `expected …` / `actual …` lines (when it has them) side by side.
fn failure_block(text: &str) -> String {
    let find = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
    };
    let diff = match (find("expected"), find("actual")) {
        (Some(e), Some(a)) => format!(
            r#"<table class="diff"><tr><th>expected</th><td class="expected">{}</td></tr><tr><th>actual</th><td class="actual">{}</td></tr></table>"#,
            esc(e.trim_start_matches(':').trim()),
            esc(a.trim_start_matches(':').trim())
        ),
        _ => String::new(),
    };
    format!(
        r#"<div class="failure"><pre>{}</pre>{diff}</div>"#,
        esc(text)
    )
}

/// The report page; `conformance` adds the summary by capability at the top.
pub fn html(
    title: &str,
    scenarios: &[ScenarioReport],
    conformance: Option<&Conformance>,
) -> String {
    let passed = scenarios
        .iter()
        .filter(|s| s.status == Status::Passed)
        .count();
    let failed = scenarios.iter().filter(|s| s.status.is_failure()).count();
    let not_applicable = scenarios.len() - passed - failed;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t}</title><style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}
table.summary,table.facts{{border-collapse:collapse;margin-bottom:1em}} .summary td,.summary th,.facts td,.facts th{{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}}
.passed{{color:#176d2c}} .failed{{color:#b00020;font-weight:bold}} .skipped{{color:#8a6d00}}
svg.ladder{{font-size:11px;background:#fafafa;border:1px solid #ddd}} .life{{stroke:#bbb}} .arrow{{stroke:#345}} .head{{fill:#345}}
.lane{{font-weight:bold}} .num,.time{{fill:#777}} .msg:hover .arrow{{stroke:#d60}} .msg:hover .label{{fill:#d60}}
.step-rule{{stroke:#9ab;stroke-dasharray:4 3}} text.step{{font-style:italic;fill:#567}} text.step.failed{{fill:#b00020}}
pre{{background:#f4f4f4;padding:.5em;overflow:auto;max-height:30em;white-space:pre-wrap;word-break:break-all}} details.open-target{{outline:2px solid #d60}}
.failure pre{{background:#fdecee;border-left:4px solid #b00020}} .diff td.expected{{background:#eaf6ec}} .diff td.actual{{background:#fdecee}}
ol.steps li.failed{{color:#b00020}} ol.steps li.skipped{{color:#999}}
</style></head><body><h1>{t}</h1>
<p id="totals">{total} scenarios: <span class="passed">{passed} passed</span>, <span class="failed">{failed} failed</span>, <span class="skipped">{not_applicable} not applicable</span></p>"#,
        t = esc(title),
        total = scenarios.len()
    );
    if let Some(c) = conformance {
        for e in &c.suite_errors {
            let _ = write!(
                h,
                r#"<div class="failure suite-error"><pre>{}</pre></div>"#,
                esc(e)
            );
        }
        h.push_str(&conformance_section(c));
    }
    h.push_str(r#"<h2>Scenarios</h2><table class="summary scenarios"><tr><th>Feature</th><th>Scenario</th><th>Location</th><th>Result</th><th>Time</th></tr>"#);
    for s in scenarios {
        let (class, text) = match &s.status {
            Status::Passed => ("passed", "passed".to_owned()),
            Status::Failed(e) | Status::Undefined(e) => (
                "failed",
                format!("failed: {}", e.lines().next().unwrap_or("")),
            ),
            Status::NotApplicable(r) => ("skipped", format!("not applicable: {r}")),
        };
        let _ = write!(
            h,
            r##"<tr class="row {class}"><td>{}</td><td><a href="#{}">{}</a></td><td>{}</td><td class="{class}">{}</td><td>{} ms</td></tr>"##,
            esc(&s.feature),
            s.anchor(),
            esc(&s.name),
            esc(&s.location()),
            esc(&text),
            s.millis
        );
    }
    h.push_str("</table>");
    for s in scenarios {
        let id = s.anchor();
        let _ = write!(
            h,
            r#"<section class="scenario result-{}" id="{id}"><h2>{} — {}</h2><p>{} · {} · {} messages</p>"#,
            s.status.word(),
            esc(&s.feature),
            esc(&s.name),
            esc(&s.location()),
            esc(s.status.word()),
            s.arrows.len(),
        );
        match &s.status {
            Status::Failed(e) | Status::Undefined(e) => h.push_str(&failure_block(e)),
            Status::NotApplicable(r) => {
                let _ = write!(h, r#"<p class="skipped">not applicable: {}</p>"#, esc(r));
            }
            Status::Passed => {}
        }
        if !s.steps.is_empty() {
            h.push_str(&steps_list(&s.steps));
        }
        if !s.arrows.is_empty() {
            h.push_str(&ladder_svg(&id, &s.arrows, &s.steps));
        }
        for (j, a) in s.arrows.iter().enumerate() {
            let shown = readable(&a.text);
            // Indenting changes whitespace; the message as sent stays one click away.
            let raw = if shown == a.text {
                String::new()
            } else {
                format!(
                    r#"<details class="raw"><summary>as sent</summary><pre>{}</pre></details>"#,
                    esc(&a.text)
                )
            };
            let _ = write!(
                h,
                r#"<details id="{id}-m{j}"><summary>{}. {} → {}: {}</summary><pre>{}</pre>{raw}</details>"#,
                j + 1,
                esc(&a.from),
                esc(&a.to),
                esc(&a.label),
                esc(&shown)
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

    fn arrow(at_us: u64, label: &str, text: &str) -> Arrow {
        Arrow {
            at_us,
            from: "alice/desk".into(),
            to: "Front End".into(),
            label: label.into(),
            text: text.into(),
        }
    }

    #[test]
    fn escapes_counts_numbers_and_shows_the_failure() {
        let s = ScenarioReport {
            feature: "F".into(),
            name: "a <b>".into(),
            file: "features/f.feature".into(),
            line: 4,
            status: Status::Failed("x & y\nexpected: HeldEvent\nactual: nothing".into()),
            millis: 3,
            arrows: vec![arrow(1, "INVITE (RequestSystemStatus)", "<xml/>")],
            ..Default::default()
        };
        let page = html("T", &[s], None);
        assert!(page.contains("a &lt;b&gt;"));
        assert!(page.contains("failed: x &amp; y"));
        assert!(page.contains("1 scenarios: <span class=\"passed\">0 passed</span>"));
        assert!(page.contains(r##"href="#s-features-f-feature--4-m0""##));
        assert!(page.contains("&lt;xml/&gt;"));
        assert!(page.contains(r#"class="num">1</text>"#), "message numbers");
        assert!(
            page.contains(r#"<td class="expected">HeldEvent</td>"#),
            "diff"
        );
    }

    #[test]
    fn steps_mark_the_ladder_before_their_first_message() {
        let steps = vec![
            StepReport {
                keyword: "Given ".into(),
                text: "alice is signed in".into(),
                started_us: 5,
                outcome: StepOutcome::Passed,
            },
            StepReport {
                keyword: "When ".into(),
                text: "alice dials bob".into(),
                started_us: 20,
                outcome: StepOutcome::Failed,
            },
        ];
        let arrows = vec![arrow(10, "INVITE", ""), arrow(30, "INFO (MakeCall)", "")];
        let order: Vec<String> = rows(&arrows, &steps)
            .iter()
            .map(|r| match r {
                Row::Step(s) => s.text.clone(),
                Row::Message(i, _) => i.to_string(),
            })
            .collect();
        assert_eq!(order, ["alice is signed in", "0", "alice dials bob", "1"]);
    }

    #[test]
    fn long_labels_are_cut_to_their_span_and_csta_is_indented() {
        let long = "INFO (ConsultationCallResponse with a very long explanation)";
        assert!(fit(long, 1).chars().count() <= CHARS_PER_LANE);
        assert!(fit(long, 1).ends_with('…'));
        assert_eq!(fit("ACK", 1), "ACK");
        let sip = "INFO sip:gw SIP/2.0\r\nContent-Length: 40\r\n\r\n<MakeCall><callingDevice>1001</callingDevice></MakeCall>";
        let r = readable(sip);
        assert!(
            r.contains("<MakeCall>\n  <callingDevice>1001</callingDevice>\n</MakeCall>"),
            "{r}"
        );
        assert_eq!(readable("not xml <"), "not xml <");
    }
}
