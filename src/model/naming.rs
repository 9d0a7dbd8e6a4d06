//! How every output names a channel: one rule, several forms. A team channel is known by
//! its display name (its URL name when that is empty); a direct or group channel has no name
//! of its own and is known by its people, which sync records as the channel's export name
//! (direct: the other username; group: the other usernames joined by `__`). Pure; imports
//! nothing but [`super::ChannelType`].

use super::ChannelType;

/// What a channel is called, from the columns the catalog keeps for it.
#[derive(Clone, Copy, Debug)]
pub struct ChannelNames<'a> {
    pub kind: &'a ChannelType,
    pub id: &'a str,
    /// The URL name (`town-square`; direct: `<user id>__<user id>`).
    pub name: &'a str,
    pub display_name: &'a str,
    /// Direct: the other username; group: the other usernames joined by `__`.
    pub export_name: Option<&'a str>,
}

impl ChannelNames<'_> {
    fn by_people(&self) -> bool {
        matches!(self.kind, ChannelType::Direct | ChannelType::Group)
    }

    /// The title people read: the display name (else the URL name); a direct or group
    /// channel: its people, `bob, carol`.
    pub fn title(&self) -> String {
        if self.by_people() {
            return self
                .export_name
                .unwrap_or(self.display_name)
                .replace("__", ", ");
        }
        if self.display_name.is_empty() {
            self.name.to_owned()
        } else {
            self.display_name.to_owned()
        }
    }

    /// The one-word handle (what `in:` matches, what a folder is named after): the URL name;
    /// a direct or group channel: its people, `bob__carol`.
    pub fn handle(&self) -> &str {
        match self.export_name {
            Some(people) if self.by_people() => people,
            _ => self.name,
        }
    }

    /// Where its posts were written: `eng/dev` in team `eng`; outside a team, its handle.
    pub fn in_team(&self, team: Option<&str>) -> String {
        match team {
            Some(team) => format!("{team}/{}", self.name),
            None => self.handle().to_owned(),
        }
    }

    /// Its path in listings: `eng/dev`, `direct/bob`, `group/bob__carol`.
    pub fn path(&self, team: Option<&str>) -> String {
        match (team, self.kind) {
            (Some(_), _) => self.in_team(team),
            (None, ChannelType::Direct) => format!("direct/{}", self.handle()),
            (None, ChannelType::Group) => format!("group/{}", self.handle()),
            (None, _) => self.handle().to_owned(),
        }
    }

    /// In a sentence: `channel dev (<id>)`, `direct channel with bob`, `group channel
    /// bob__carol`; a direct or group channel whose people are unknown by its id.
    pub fn phrase(&self) -> String {
        match (self.kind, self.export_name) {
            (ChannelType::Direct, Some(name)) => format!("direct channel with {name}"),
            (ChannelType::Group, Some(names)) => format!("group channel {names}"),
            (ChannelType::Direct | ChannelType::Group, None) => format!("channel {}", self.id),
            _ => format!("channel {} ({})", self.name, self.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(
        kind: &'a ChannelType,
        name: &'a str,
        display: &'a str,
        export: Option<&'a str>,
    ) -> ChannelNames<'a> {
        ChannelNames {
            kind,
            id: "c1",
            name,
            display_name: display,
            export_name: export,
        }
    }

    #[test]
    fn team_channels_go_by_display_name_and_url_name() {
        let open = ChannelType::Public;
        let dev = names(&open, "dev", "Development", None);
        assert_eq!(dev.title(), "Development");
        assert_eq!(dev.handle(), "dev");
        assert_eq!(dev.in_team(Some("eng")), "eng/dev");
        assert_eq!(dev.path(Some("eng")), "eng/dev");
        assert_eq!(dev.path(None), "dev");
        assert_eq!(dev.phrase(), "channel dev (c1)");
        assert_eq!(names(&open, "dev", "", None).title(), "dev");
    }

    #[test]
    fn direct_and_group_channels_go_by_their_people() {
        let (direct, group) = (ChannelType::Direct, ChannelType::Group);
        let dm = names(&direct, "u1__u2", "", Some("bob"));
        assert_eq!(
            (dm.title(), dm.handle(), dm.path(None)),
            ("bob".into(), "bob", "direct/bob".into())
        );
        assert_eq!(dm.in_team(None), "bob");
        assert_eq!(dm.phrase(), "direct channel with bob");
        let gm = names(&group, "hash", "bob, carol, dave", Some("bob__carol"));
        assert_eq!(gm.title(), "bob, carol");
        assert_eq!(gm.path(None), "group/bob__carol");
        assert_eq!(gm.phrase(), "group channel bob__carol");
        // People not recorded: the display name stands in for the title, the URL name for
        // the handle, the id in sentences.
        let unknown = names(&group, "hash", "bob, carol", None);
        assert_eq!(unknown.title(), "bob, carol");
        assert_eq!(unknown.handle(), "hash");
        assert_eq!(unknown.phrase(), "channel c1");
    }
}
