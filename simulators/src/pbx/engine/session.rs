//! The ECMA-354 application session of a link: start, reset and stop, as the profile's policy
//! says.

use std::time::{Duration, Instant};

use rcc_protocol::csta::{Message, Reason, Session};

use super::{LinkId, Pbx, SessionState};

impl Pbx {
    pub(super) fn session(&mut self, link: LinkId, invoke: Option<u16>, s: Session, now: Instant) {
        let policy = self.config.session.clone();
        let reply = match s {
            Session::Start {
                user,
                password,
                protocol_versions,
                duration,
                ..
            } => {
                let version = match policy.version_must_contain {
                    Some(part) => protocol_versions.iter().find(|v| v.contains(part)).cloned(),
                    None => protocol_versions.first().cloned(),
                };
                let credentials_ok = match (&policy.credentials, &user, &password) {
                    (Some((u, p)), Some(gu), Some(gp)) => u == gu && p == gp,
                    (Some(_), _, _) => false,
                    (None, Some(_), Some(_)) => true,
                    (None, _, _) => !policy.login_required,
                };
                if self.faults.refuse_sessions {
                    Session::StartNeg {
                        error: Reason::Defined("serverResourcesBusy".to_owned()),
                    }
                } else if !credentials_ok {
                    self.count("bad credentials");
                    Session::StartNeg {
                        error: Reason::Defined("invalidApplicationInfo".to_owned()),
                    }
                } else if policy.version_must_contain.is_some() && version.is_none() {
                    Session::StartNeg {
                        error: Reason::Defined("requestedProtocolVersionNotSupported".to_owned()),
                    }
                } else {
                    let secs = duration
                        .map(u64::from)
                        .unwrap_or(policy.default_duration.as_secs())
                        .clamp(1, policy.max_duration.as_secs().max(1));
                    let granted = Duration::from_secs(secs);
                    let id = format!("{:08X}", 0x5A3F_0000 + self.next_session);
                    self.next_session += 1;
                    let Some(l) = self.links.get_mut(&link) else {
                        return;
                    };
                    if policy.version_must_contain.is_some()
                        && let Some(v) = &version
                    {
                        l.namespace.clone_from(v);
                    }
                    l.session = Some(SessionState {
                        id: id.clone(),
                        duration: granted,
                        expires: now + granted,
                        started: now,
                        last_reset: now,
                    });
                    Session::StartPos {
                        session_id: id,
                        protocol_version: version.or_else(|| Some(self.config.namespace.clone())),
                        duration: Some(secs as u32),
                    }
                }
            }
            Session::Reset {
                session_id,
                duration,
            } => {
                let max = policy.max_duration.as_secs().max(1);
                match self.links.get_mut(&link).and_then(|l| {
                    let late = &mut l.late_resets;
                    l.resets += 1;
                    l.session
                        .as_mut()
                        .filter(|s| s.id == session_id)
                        .map(|s| (s, late))
                }) {
                    Some((s, late)) => {
                        let since = now.saturating_duration_since(s.last_reset.max(s.started));
                        if since > s.duration / 2 {
                            *late += 1;
                        }
                        if let Some(d) = duration {
                            s.duration = Duration::from_secs(u64::from(d).clamp(1, max));
                        }
                        s.last_reset = now;
                        s.expires = now + s.duration;
                        Session::ResetPos {
                            duration: Some(s.duration.as_secs() as u32),
                        }
                    }
                    None => Session::ResetNeg {
                        error: Reason::Defined("invalidSessionID".to_owned()),
                    },
                }
            }
            Session::Stop { session_id, .. } => {
                match self
                    .links
                    .get_mut(&link)
                    .filter(|l| l.session.as_ref().is_some_and(|s| s.id == session_id))
                {
                    Some(l) => {
                        l.session = None;
                        Session::StopPos
                    }
                    None => Session::StopNeg {
                        error: Reason::Defined("invalidSessionID".to_owned()),
                    },
                }
            }
            _ => {
                self.count("unexpected message");
                return;
            }
        };
        self.respond(link, invoke, &Message::Session(reply));
    }
}
