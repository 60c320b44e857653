//! CSTAErrorCode, the negative response to a CSTA request (also inside Avaya's CSTAException).

use std::fmt;

use super::values::ErrorCategory;
use super::xml::{Element, XmlWriter};

/// A CSTA error: the category element and its value (`operation` / `invalidCallID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CstaError {
    /// The category child of `CSTAErrorCode`.
    pub category: ErrorCategory,
    /// Its value (empty for `unspecified`).
    pub value: String,
}

impl CstaError {
    /// An error of the given category and value.
    pub fn new(category: ErrorCategory, value: impl Into<String>) -> Self {
        CstaError {
            category,
            value: value.into(),
        }
    }

    /// `operation/<value>`
    pub fn operation(value: &str) -> Self {
        CstaError::new(ErrorCategory::Operation, value)
    }

    /// `stateIncompatibility/<value>`
    pub fn state(value: &str) -> Self {
        CstaError::new(ErrorCategory::StateIncompatibility, value)
    }

    /// `systemResourceAvailibility/<value>`
    pub fn resource(value: &str) -> Self {
        CstaError::new(ErrorCategory::SystemResourceAvailability, value)
    }

    pub(crate) fn decode(el: Element<'_>) -> CstaError {
        let el = if el.name() == "CSTAException" {
            el.find("CSTAErrorCode").unwrap_or(el)
        } else {
            el
        };
        match el.children().next() {
            Some(c) => CstaError::new(ErrorCategory::parse(c.name()), c.text()),
            None => CstaError::new(ErrorCategory::Unspecified, ""),
        }
    }

    pub(crate) fn encode(&self, w: &mut XmlWriter) {
        let category = self.category.as_str();
        if !super::xml::is_ncname(category) {
            // A category from a peer that is no element name: written as `unspecified`, with
            // the original category and value as its text.
            w.leaf("unspecified", &format!("{category}/{}", self.value));
        } else if self.value.is_empty() {
            w.empty(category);
        } else {
            w.leaf(category, &self.value);
        }
    }
}

impl fmt::Display for CstaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.category, self.value)
    }
}

impl std::error::Error for CstaError {}
