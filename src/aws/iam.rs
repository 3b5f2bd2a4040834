//! IAM role I/O without any transfer state: read a role (and one inline policy), create one,
//! put an inline policy. Each call's outcomes that the role step decides on — a role that
//! exists already, the account's role quota, a role without room for another policy — are
//! answers, not errors, so the step's branches are tested here against mocked IAM responses.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;

use super::{Refused, classify};
use crate::policy::decode_iam_document;

/// A role as IAM has it.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleRead {
    /// Its ARN.
    pub arn: String,
    /// Trust policy, decoded.
    pub trust: Option<String>,
    /// The inline policy asked for, decoded, if the role has it.
    pub inline: Option<String>,
    /// Its tags as (key, value).
    pub tags: Vec<(String, String)>,
    /// The ARN of its permissions boundary, if it has one.
    pub boundary: Option<String>,
}

/// Reads the role and, when `inline` names one, that inline policy; `None` when the role does
/// not exist.
pub async fn read_role(iam: &Client, name: &str, inline: Option<&str>) -> Result<Option<RoleRead>, Refused> {
    let role = match iam.get_role().role_name(name).send().await {
        Ok(out) => match out.role {
            Some(role) => role,
            None => return Ok(None),
        },
        Err(e) if classify(&e).is_not_found() => return Ok(None),
        Err(e) => return Err(Refused::new("iam:GetRole", &e)),
    };
    let inline = match inline {
        None => None,
        Some(policy) => match iam.get_role_policy().role_name(name).policy_name(policy).send().await {
            Ok(out) => Some(decode_iam_document(out.policy_document())),
            Err(e) if classify(&e).is_not_found() => None,
            Err(e) => return Err(Refused::new("iam:GetRolePolicy", &e)),
        },
    };
    Ok(Some(RoleRead {
        arn: role.arn().to_string(),
        trust: role.assume_role_policy_document().map(decode_iam_document),
        inline,
        tags: role
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        boundary: role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string),
    }))
}

/// A role to create.
#[derive(Clone, Debug)]
pub struct NewRole<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its trust policy.
    pub trust: &'a serde_json::Value,
    /// Its description.
    pub description: String,
    /// Its permissions boundary.
    pub boundary: Option<&'a str>,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// What `CreateRole` came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Creation {
    /// The role is new: its ARN.
    Created(String),
    /// A role of that name exists (`EntityAlreadyExists`): Ferry's after a crash, or
    /// someone else's. The caller reads it and decides.
    Exists,
    /// The account is at its role quota (`LimitExceeded` ... `RolesPerAccount`): IAM's message.
    AtRoleQuota(String),
}

/// Creates a role with its trust policy, tags and boundary.
pub async fn create_role(iam: &Client, role: &NewRole<'_>) -> Result<Creation, Refused> {
    let tags = role
        .tags
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect::<Vec<_>>();
    let sent = iam
        .create_role()
        .role_name(role.name)
        .assume_role_policy_document(role.trust.to_string())
        .description(role.description.clone())
        .set_permissions_boundary(role.boundary.map(str::to_string))
        .set_tags(Some(tags))
        .send()
        .await;
    match sent {
        Ok(out) => Ok(Creation::Created(
            out.role().map(|r| r.arn().to_string()).unwrap_or_default(),
        )),
        Err(e) => {
            let failure = classify(&e);
            match failure.code.as_str() {
                "EntityAlreadyExists" => Ok(Creation::Exists),
                "LimitExceeded" if failure.message.contains("RolesPerAccount") => {
                    Ok(Creation::AtRoleQuota(failure.message))
                }
                _ => Err(Refused {
                    action: "iam:CreateRole",
                    failure,
                }),
            }
        }
    }
}

/// Puts an inline policy on a role; `false` when IAM refuses it because the role's inline
/// policies would pass their 10,240 characters (`LimitExceeded`, "Maximum policy size ...
/// exceeded": <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html>).
pub async fn put_role_policy(
    iam: &Client,
    role: &str,
    policy_name: &str,
    document: &serde_json::Value,
) -> Result<bool, Refused> {
    let sent = iam
        .put_role_policy()
        .role_name(role)
        .policy_name(policy_name)
        .policy_document(document.to_string())
        .send()
        .await;
    let Err(e) = sent else {
        return Ok(true);
    };
    let failure = classify(&e);
    if failure.code == "LimitExceeded" && failure.message.contains("policy size") {
        tracing::info!(
            role,
            "IAM has no room for another inline policy on the role: {}",
            failure.message
        );
        return Ok(false);
    }
    Err(Refused {
        action: "iam:PutRolePolicy",
        failure,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::operation::create_role::{CreateRoleError, CreateRoleOutput};
    use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
    use aws_sdk_iam::operation::get_role_policy::{GetRolePolicyError, GetRolePolicyOutput};
    use aws_sdk_iam::operation::put_role_policy::{PutRolePolicyError, PutRolePolicyOutput};
    use aws_sdk_iam::types::error::{EntityAlreadyExistsException, LimitExceededException, NoSuchEntityException};
    use aws_sdk_iam::types::{Role, Tag};
    use aws_smithy_mocks::{RuleMode, mock};
    use aws_smithy_types::DateTime;

    use super::*;
    use crate::aws::FailureKind;
    use crate::aws::mocked::{Mocked, error_meta};

    const ARN: &str = "arn:aws:iam::111111111111:role/ferry-ns-0123abcd-0";

    fn role(name: &str) -> Role {
        Role::builder()
            .path("/")
            .role_name(name)
            .role_id("AROAEXAMPLE")
            .arn(ARN)
            .create_date(DateTime::from_secs(0))
            .assume_role_policy_document("%7B%22Version%22%3A%222012-10-17%22%7D")
            .tags(Tag::builder().key("ferry.dev/pool").value("ns").build().unwrap())
            .build()
            .unwrap()
    }

    fn new_role(trust: &serde_json::Value) -> NewRole<'_> {
        NewRole {
            name: "ferry-ns-0123abcd-0",
            trust,
            description: "test".into(),
            boundary: None,
            tags: vec![("ferry.dev/pool".into(), "ns".into())],
        }
    }

    #[tokio::test]
    async fn a_role_that_exists_is_an_answer_and_the_quota_is_told_apart_from_other_limits() {
        let trust = serde_json::json!({"Version": "2012-10-17"});
        let exists = mock!(aws_sdk_iam::Client::create_role).then_error(|| {
            CreateRoleError::EntityAlreadyExistsException(
                EntityAlreadyExistsException::builder()
                    .meta(error_meta(
                        "EntityAlreadyExists",
                        "Role with name ferry-ns-0123abcd-0 already exists.",
                    ))
                    .build(),
            )
        });
        let quota = mock!(aws_sdk_iam::Client::create_role).then_error(|| {
            CreateRoleError::LimitExceededException(
                LimitExceededException::builder()
                    .meta(error_meta(
                        "LimitExceeded",
                        "Cannot exceed quota for RolesPerAccount: 1000",
                    ))
                    .build(),
            )
        });
        let tags_limit = mock!(aws_sdk_iam::Client::create_role).then_error(|| {
            CreateRoleError::LimitExceededException(
                LimitExceededException::builder()
                    .meta(error_meta("LimitExceeded", "Cannot exceed quota for TagsPerRole: 50"))
                    .build(),
            )
        });
        let created = mock!(aws_sdk_iam::Client::create_role)
            .match_requests(|r| r.role_name() == Some("ferry-ns-0123abcd-0") && r.tags().len() == 1)
            .then_output(|| CreateRoleOutput::builder().role(role("ferry-ns-0123abcd-0")).build());
        let m = Mocked::new(RuleMode::Sequential, &[&exists, &quota, &tags_limit, &created]);
        let iam = m.account.iam("us-east-1");

        assert_eq!(create_role(&iam, &new_role(&trust)).await, Ok(Creation::Exists));
        assert_eq!(
            create_role(&iam, &new_role(&trust)).await,
            Ok(Creation::AtRoleQuota(
                "Cannot exceed quota for RolesPerAccount: 1000".into()
            ))
        );
        let refused = create_role(&iam, &new_role(&trust)).await.unwrap_err();
        assert_eq!(refused.action, "iam:CreateRole");
        assert_eq!(refused.failure.code, "LimitExceeded");
        assert_eq!(
            create_role(&iam, &new_role(&trust)).await,
            Ok(Creation::Created(ARN.into()))
        );
        assert_eq!(created.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_missing_role_or_policy_reads_as_absent_and_documents_are_decoded() {
        let missing = mock!(aws_sdk_iam::Client::get_role).then_error(|| {
            GetRoleError::NoSuchEntityException(
                NoSuchEntityException::builder()
                    .meta(error_meta("NoSuchEntity", "The role with name x cannot be found."))
                    .build(),
            )
        });
        let found = || {
            mock!(aws_sdk_iam::Client::get_role)
                .then_output(|| GetRoleOutput::builder().role(role("ferry-ns-0123abcd-0")).build())
        };
        let (found_1, found_2) = (found(), found());
        let no_policy = mock!(aws_sdk_iam::Client::get_role_policy).then_error(|| {
            GetRolePolicyError::NoSuchEntityException(
                NoSuchEntityException::builder()
                    .meta(error_meta(
                        "NoSuchEntity",
                        "The role policy with name p cannot be found.",
                    ))
                    .build(),
            )
        });
        let policy = mock!(aws_sdk_iam::Client::get_role_policy)
            .match_requests(|r| r.policy_name() == Some("ferry-abc"))
            .then_output(|| {
                GetRolePolicyOutput::builder()
                    .role_name("ferry-ns-0123abcd-0")
                    .policy_name("ferry-abc")
                    .policy_document("%7B%22Statement%22%3A%5B%5D%7D")
                    .build()
                    .unwrap()
            });
        let m = Mocked::new(
            RuleMode::Sequential,
            &[&missing, &found_1, &no_policy, &found_2, &policy],
        );
        let iam = m.account.iam("us-east-1");

        assert_eq!(read_role(&iam, "x", Some("ferry-abc")).await, Ok(None));
        let without = read_role(&iam, "ferry-ns-0123abcd-0", Some("p"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(without.inline, None);
        assert_eq!(without.trust.as_deref(), Some(r#"{"Version":"2012-10-17"}"#));
        assert_eq!(without.tags, vec![("ferry.dev/pool".to_string(), "ns".to_string())]);
        let with = read_role(&iam, "ferry-ns-0123abcd-0", Some("ferry-abc"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(with.inline.as_deref(), Some(r#"{"Statement":[]}"#));
    }

    #[tokio::test]
    async fn a_full_role_is_no_room_and_any_other_refusal_names_put_role_policy() {
        let full = mock!(aws_sdk_iam::Client::put_role_policy).then_error(|| {
            PutRolePolicyError::LimitExceededException(
                LimitExceededException::builder()
                    .meta(error_meta(
                        "LimitExceeded",
                        "Maximum policy size of 10240 bytes exceeded for role ferry-ns-0123abcd-0",
                    ))
                    .build(),
            )
        });
        let denied = mock!(aws_sdk_iam::Client::put_role_policy).then_error(|| {
            PutRolePolicyError::generic(error_meta(
                "AccessDenied",
                "not authorized to perform iam:PutRolePolicy",
            ))
        });
        let put = mock!(aws_sdk_iam::Client::put_role_policy).then_output(|| PutRolePolicyOutput::builder().build());
        let m = Mocked::new(RuleMode::Sequential, &[&full, &denied, &put]);
        let iam = m.account.iam("us-east-1");
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": []});

        assert_eq!(put_role_policy(&iam, "r", "p", &doc).await, Ok(false));
        let refused = put_role_policy(&iam, "r", "p", &doc).await.unwrap_err();
        assert_eq!(
            (refused.action, refused.failure.kind),
            ("iam:PutRolePolicy", FailureKind::AccessDenied)
        );
        assert_eq!(put_role_policy(&iam, "r", "p", &doc).await, Ok(true));
    }
}
