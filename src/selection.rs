//! Which scenarios a run takes: a tag expression, scenario names (`--name`, a regular
//! expression) and locations (`features/hold.feature` or `features/hold.feature:3`), the way
//! cucumber and SIPp users expect; and the listing behind `rcc-lab run --list`.

use std::path::{Path, PathBuf};

use cucumber::feature::Ext as _;
use cucumber::gherkin::{self, GherkinEnv};
use cucumber::tag::Ext as _;

/// A feature file, optionally narrowed to the scenario at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The feature file.
    pub file: PathBuf,
    /// A line inside a scenario: its `Scenario:` line, a step, an `Examples:` line or an
    /// example row.
    pub line: Option<usize>,
}

impl std::str::FromStr for Location {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.rsplit_once(':') {
            Some((file, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
                let line = line
                    .parse()
                    .map_err(|e| format!("{s:?}: line number: {e}"))?;
                Ok(Location {
                    file: file.into(),
                    line: Some(line),
                })
            }
            _ => Ok(Location {
                file: s.into(),
                line: None,
            }),
        }
    }
}

/// The scenarios a run takes. Empty lists select everything.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Tag expression (`@profile-osv and not @slow`), parsed.
    pub tags: Option<gherkin::tagexpr::TagOperation>,
    /// The tag expression as written (for the report).
    pub tags_text: Option<String>,
    /// Scenario names; any match selects.
    pub names: Vec<regex::Regex>,
    /// Locations; any match selects.
    pub locations: Vec<Location>,
}

/// Every tag on a scenario: its feature's, its rule's, its own and its example block's
/// (cucumber folds an outline's example tags into the expanded scenario), without `@`.
pub fn tags_of(
    feature: &gherkin::Feature,
    rule: Option<&gherkin::Rule>,
    scenario: &gherkin::Scenario,
) -> Vec<String> {
    feature
        .tags
        .iter()
        .chain(rule.iter().flat_map(|r| &r.tags))
        .chain(scenario.tags.iter())
        .map(|t| t.trim_start_matches('@').to_owned())
        .collect()
}

impl Selection {
    /// A selection by a tag expression; an expression that does not parse is an error naming
    /// it.
    pub fn with_tags(expression: Option<&str>) -> anyhow::Result<Selection> {
        let tags = match expression {
            Some(t) => Some(
                t.parse::<gherkin::tagexpr::TagOperation>()
                    .map_err(|e| anyhow::anyhow!("tag expression {t:?}: {e}"))?,
            ),
            None => None,
        };
        Ok(Selection {
            tags,
            tags_text: expression.map(str::to_owned),
            ..Default::default()
        })
    }

    /// Whether the run takes this scenario.
    pub fn selects(
        &self,
        feature: &gherkin::Feature,
        rule: Option<&gherkin::Rule>,
        scenario: &gherkin::Scenario,
    ) -> bool {
        let tags = tags_of(feature, rule, scenario);
        if let Some(t) = &self.tags
            && !t.eval(tags.iter())
        {
            return false;
        }
        if !self.names.is_empty() && !self.names.iter().any(|r| r.is_match(&scenario.name)) {
            return false;
        }
        self.locations.is_empty()
            || self
                .locations
                .iter()
                .any(|l| at_location(l, feature, scenario))
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

fn at_location(l: &Location, feature: &gherkin::Feature, scenario: &gherkin::Scenario) -> bool {
    let Some(path) = &feature.path else {
        return false;
    };
    if !same_file(&l.file, path) {
        return false;
    }
    let Some(line) = l.line else {
        return true;
    };
    // An expanded outline's position is its example row; its steps keep their own lines,
    // and the outline's keyword line sits just above the first step.
    let first_step = scenario.steps.first().map(|s| s.position.line);
    let last_step = scenario.steps.last().map(|s| s.position.line);
    let examples = scenario.examples.iter().map(|e| e.position.line);
    line == scenario.position.line
        || examples.clone().any(|e| e == line)
        || matches!((first_step, last_step), (Some(f), Some(t)) if line + 1 >= f && line <= t)
}

/// One scenario in a listing.
#[derive(Debug, Clone)]
pub struct Listed {
    /// `file:line`.
    pub location: String,
    /// Feature name.
    pub feature: String,
    /// Scenario name, example values substituted.
    pub name: String,
    /// Its tags, without `@`.
    pub tags: Vec<String>,
}

/// The feature files under `dir` (or `dir` itself), in folders below too, as cucumber finds
/// them (`.feature`, any case), sorted.
pub fn feature_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if dir.is_file() {
        return Ok(vec![dir.to_owned()]);
    }
    let mut files = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", folder.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", folder.display()))?
                .path();
            if path.is_dir() {
                folders.push(path);
            } else if path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("feature"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Checks that every location names a feature file under `dir` (a location elsewhere would
/// silently select nothing).
pub fn check_locations(dir: &Path, selection: &Selection) -> anyhow::Result<()> {
    let files = feature_files(dir)?;
    for l in &selection.locations {
        anyhow::ensure!(
            files.iter().any(|f| same_file(f, &l.file)),
            "{} is not a feature file under {} (set --features)",
            l.file.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The scenarios of the feature files under `dir` (or the one file) that `selection` takes,
/// in file and line order. A file that does not parse is an error naming it.
pub fn list(dir: &Path, selection: &Selection) -> anyhow::Result<Vec<Listed>> {
    let mut out = Vec::new();
    for path in feature_files(dir)? {
        let feature = gherkin::Feature::parse_path(&path, GherkinEnv::default())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .expand_examples()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let plain = feature.scenarios.iter().map(|s| (None, s));
        let ruled = feature
            .rules
            .iter()
            .flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s)));
        for (rule, s) in plain.chain(ruled) {
            if selection.selects(&feature, rule, s) {
                out.push(Listed {
                    location: format!("{}:{}", path.display(), s.position.line),
                    feature: feature.name.clone(),
                    name: s.name.clone(),
                    tags: tags_of(&feature, rule, s),
                });
            }
        }
    }
    Ok(out)
}

/// The step vocabulary, for people writing their own features: every step expression the
/// suite defines, as `Given …`, `When …`, `Then …`, from the step definitions' source.
pub fn vocabulary() -> Vec<String> {
    const STEPS: &str = include_str!("scenarios/steps.rs");
    let mut out = Vec::new();
    for line in STEPS.lines().map(str::trim) {
        for (attr, word) in [
            ("#[given(", "Given"),
            ("#[when(", "When"),
            ("#[then(", "Then"),
        ] {
            let Some(rest) = line.strip_prefix(attr) else {
                continue;
            };
            let rest = rest.strip_prefix("expr = ").unwrap_or(rest);
            if let Some(text) = rest
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix(")]"))
                .and_then(|r| r.strip_suffix('"'))
            {
                out.push(format!("{word} {text}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("features")
    }

    #[test]
    fn locations_parse_with_and_without_a_line() {
        let l: Location = "features/hold.feature:3".parse().expect("location");
        assert_eq!(l.line, Some(3));
        assert_eq!(l.file, PathBuf::from("features/hold.feature"));
        let l: Location = "features/hold.feature".parse().expect("location");
        assert_eq!(l.line, None);
    }

    fn line_of(file: &Path, text: &str) -> usize {
        let body = std::fs::read_to_string(file).expect("feature file");
        body.lines()
            .position(|l| l.contains(text))
            .expect("text in the file")
            + 1
    }

    #[test]
    fn a_line_selects_its_scenario_and_an_outline_line_all_its_examples() {
        let file = features().join("sign_in.feature");
        let outline = Selection {
            locations: vec![Location {
                file: file.clone(),
                line: Some(line_of(&file, "Scenario Outline:")),
            }],
            ..Default::default()
        };
        let got = list(&file, &outline).expect("list");
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got.iter().any(|s| s.name.contains("sipe")), "{got:?}");
        let step_line = Selection {
            locations: vec![Location {
                file: file.clone(),
                line: Some(line_of(&file, "signed in with line tel:")),
            }],
            ..Default::default()
        };
        let got = list(&file, &step_line).expect("list");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].name.contains("LineURI"), "{got:?}");
    }

    #[test]
    fn names_and_tags_narrow_the_listing() {
        let by_name = Selection {
            names: vec![regex::Regex::new("^The PBX ends").expect("regex")],
            ..Default::default()
        };
        let got = list(&features(), &by_name).expect("list");
        assert_eq!(got.len(), 1, "{got:?}");
        let tagged = Selection::with_tags(Some("@profile-osv")).expect("tags");
        let got = list(&features(), &tagged).expect("list");
        assert!(
            !got.is_empty()
                && got
                    .iter()
                    .all(|s| s.tags.iter().any(|t| t == "profile-osv"))
        );
    }

    #[test]
    fn a_location_outside_the_features_folder_is_an_error() {
        let sel = Selection {
            locations: vec!["elsewhere/hold.feature:3".parse().expect("location")],
            ..Default::default()
        };
        let err = check_locations(&features(), &sel).expect_err("not under features");
        assert!(err.to_string().contains("elsewhere/hold.feature"), "{err}");
        let ok = Selection {
            locations: vec![Location {
                file: features().join("hold.feature"),
                line: None,
            }],
            ..Default::default()
        };
        check_locations(&features(), &ok).expect("under features");
    }

    #[test]
    fn an_examples_line_selects_its_rows() {
        let file = features().join("pbx_profiles.feature");
        let sel = Selection {
            locations: vec![Location {
                file: file.clone(),
                line: Some(line_of(&file, "Examples: OpenScape Voice")),
            }],
            ..Default::default()
        };
        let got = list(&file, &sel).expect("list");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].name.contains("OpenScape"), "{got:?}");
    }

    #[test]
    fn the_vocabulary_lists_the_step_expressions() {
        let v = vocabulary();
        assert!(v.iter().any(|s| s == "When {word} dials {word}"), "{v:?}");
        assert!(
            v.iter()
                .any(|s| s == "Given the gateway is not a trusted application")
        );
        assert!(v.len() > 40, "{}", v.len());
    }
}
