//! Projects: a user's folders of photos (usually one per listing).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::projects::Project;
use crate::platform::error::ApiError;

/// A project name: 1–100 characters after trimming, no control characters. Stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ApiError::validation("name", "is required"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ApiError::validation(
                "name",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ApiError::validation("name", "must not contain control characters"));
        }
        Ok(ProjectName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Body of `POST /api/v1/projects` and `PUT /api/v1/projects/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectNameBody {
    pub name: String,
}

/// A project as the API shows it.
#[derive(Debug, Serialize)]
pub struct ProjectView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        ProjectView {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ProjectList {
    pub projects: Vec<ProjectView>,
    pub next_cursor: Option<String>,
}

/// Model spend of one of the owner's live projects; 404 when it is not theirs. Deleted images
/// count: the money was spent.
pub async fn cost(
    db: &sqlx::PgPool,
    owner: Uuid,
    project_id: Uuid,
) -> Result<crate::db::images::ProjectCost, ApiError> {
    if crate::db::projects::find_owned(db, owner, project_id).await?.is_none() {
        return Err(ApiError::NotFound("project"));
    }
    Ok(crate::db::images::project_cost(db, owner, project_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ProjectName::parse("  Maple St  ").unwrap().as_str(), "Maple St");
        assert!(ProjectName::parse("   ").is_err());
        assert!(ProjectName::parse(&"ü".repeat(100)).is_ok());
        assert!(ProjectName::parse(&"ü".repeat(101)).is_err());
        assert!(ProjectName::parse("a\nb").is_err());
    }
}
