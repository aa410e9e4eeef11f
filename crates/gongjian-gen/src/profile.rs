//! The figures a district is generated from.

/// The figures of a district (DOMAIN.md, Gulou), before scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub streets: usize,
    pub communities: usize,
    pub residents: usize,
    /// Grids in all (片区, 居民区网格, 微单元网格).
    pub grids: usize,
    pub agreements: usize,
    /// Agreements with a second resident party (218 agreements with 238
    /// units: twenty have two).
    pub agreements_with_two: usize,
    pub services: usize,
    pub projects: usize,
    pub urgent_projects: usize,
    pub projects_done: usize,
    pub problems: usize,
    pub problems_resolved: usize,
    pub wishes: usize,
    pub whistles: usize,
    pub needs: usize,
    pub resources: usize,
    pub responsibilities: usize,
}

impl Profile {
    /// Gulou (DOMAIN.md): 13 streets, 120 communities, 540 resident units,
    /// about 600 grids, 218 agreements with 238 units, 569 service entries,
    /// 711 projects (59 urgent, 133 done), 365 problems (336 resolved).
    pub fn district() -> Profile {
        Profile {
            streets: 13,
            communities: 120,
            residents: 540,
            grids: 600,
            agreements: 218,
            agreements_with_two: 20,
            services: 569,
            projects: 711,
            urgent_projects: 59,
            projects_done: 133,
            problems: 365,
            problems_resolved: 336,
            wishes: 240,
            whistles: 120,
            needs: 360,
            resources: 540,
            responsibilities: 120,
        }
    }

    /// Every figure multiplied by `factor` (×10 is a large city).
    pub fn scaled(&self, factor: f64) -> Profile {
        let s = |n: usize| ((n as f64) * factor).round().max(1.0) as usize;
        Profile {
            streets: s(self.streets),
            communities: s(self.communities),
            residents: s(self.residents),
            grids: s(self.grids),
            agreements: s(self.agreements),
            agreements_with_two: s(self.agreements_with_two),
            services: s(self.services),
            projects: s(self.projects),
            urgent_projects: s(self.urgent_projects),
            projects_done: s(self.projects_done),
            problems: s(self.problems),
            problems_resolved: s(self.problems_resolved),
            wishes: s(self.wishes),
            whistles: s(self.whistles),
            needs: s(self.needs),
            resources: s(self.resources),
            responsibilities: s(self.responsibilities),
        }
    }

    /// A named profile: `district` (Gulou) or `small` (one street, for
    /// tests and quick looks).
    pub fn named(name: &str) -> Option<Profile> {
        match name {
            "district" => Some(Profile::district()),
            "small" => Some(Profile {
                streets: 1,
                communities: 4,
                residents: 12,
                grids: 20,
                agreements: 6,
                agreements_with_two: 1,
                services: 16,
                projects: 20,
                urgent_projects: 3,
                projects_done: 5,
                problems: 12,
                problems_resolved: 10,
                wishes: 8,
                whistles: 4,
                needs: 12,
                resources: 12,
                responsibilities: 4,
            }),
            _ => None,
        }
    }
}
