//! What the export tells its user: every change and omission as it is made, the
//! human-readable report, and the `mmctl` script for the memberships the import cannot give.

use super::plan::{Plan, PlannedUser};
use super::rules::{self, rune_len};
use super::{BulkReport, Change, ChangeKind};

/// The human-readable report: counts, then every change and omission, then warnings.
pub fn render_report(r: &BulkReport) -> String {
    let mut out = format!(
        "matterbak bulk import: {} teams, {} channels, {} users, {} bots ({} existing accounts referenced, no line written), {} posts, {} replies, {} reactions, {} attachments, {} direct/group channels, {} direct posts, {} emojis, {} profile images\n",
        r.teams,
        r.channels,
        r.users,
        r.bots,
        r.existing_users,
        r.posts,
        r.replies,
        r.reactions,
        r.attachments,
        r.direct_channels,
        r.direct_posts,
        r.emojis,
        r.profile_images
    );
    out.push_str(&format!("{} change(s) and omission(s):\n", r.changes.len()));
    for change in &r.changes {
        out.push_str(&format!("  {change}\n"));
    }
    for warning in &r.warnings {
        out.push_str(&format!("  {warning}\n"));
    }
    out
}

/// Notes that `subject` was written changed (`reason` says how and why).
pub(super) fn changed(
    report: &mut BulkReport,
    subject: impl Into<String>,
    reason: impl Into<String>,
) {
    note(report, ChangeKind::Changed, subject.into(), reason.into());
}

/// Notes that `subject` was left out (`reason` says why).
pub(super) fn omitted(
    report: &mut BulkReport,
    subject: impl Into<String>,
    reason: impl Into<String>,
) {
    note(report, ChangeKind::Omitted, subject.into(), reason.into());
}

fn note(report: &mut BulkReport, kind: ChangeKind, subject: String, reason: String) {
    report.changes.push(Change {
        kind,
        subject,
        reason,
    });
}

/// A text cut to `max` runes, with a change noted when it was longer.
pub(super) fn fit_runes(
    report: &mut BulkReport,
    subject: &str,
    field: &str,
    text: &str,
    max: usize,
) -> String {
    if rune_len(text) > max {
        changed(
            report,
            subject,
            format!("{field} cut to {max} characters (the server's limit)"),
        );
    }
    rules::truncate_runes(text, max).to_owned()
}

/// `mmctl` commands for memberships the import cannot give: accounts that already exist on
/// the target, and bots.
pub(super) fn mmctl_script(plan: &Plan, report: &mut BulkReport) -> String {
    let mut out = String::from(
        "#!/bin/sh\n# Memberships for accounts that already exist on the target (and bots), which the\n# import leaves untouched. Run after `mmctl import process` has finished.\nset -e\n",
    );
    let mut users: Vec<&PlannedUser> = plan
        .users
        .values()
        .filter(|u| (u.existing || u.bot) && !u.teams.is_empty())
        .collect();
    users.sort_by(|a, b| a.username.cmp(&b.username));
    for user in users {
        for (&team, (_, channels)) in &user.teams {
            let team_name = &plan.teams[team].name;
            out.push_str(&format!(
                "mmctl team users add {} {}\n",
                quote(team_name),
                quote(&user.username)
            ));
            report.mmctl_commands += 1;
            for &channel in channels.keys() {
                let c = &plan.channels[channel];
                let line = format!(
                    "mmctl channel users add {} {}\n",
                    quote(&format!("{team_name}:{}", c.name)),
                    quote(&user.username)
                );
                if c.deleted_at > 0 {
                    out.push_str("# archived channel: `mmctl channel unarchive` it first, then archive it again\n# ");
                }
                out.push_str(&line);
                report.mmctl_commands += 1;
            }
        }
    }
    out
}

/// A shell word in single quotes.
pub(super) fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
