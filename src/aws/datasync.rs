//! DataSync helpers shared by the location, task, execution and cleanup steps: tags, and the
//! paginated listings Ferry searches for its own resources before creating anything.

use aws_sdk_datasync::Client;
use aws_sdk_datasync::types::{LocationFilter, LocationFilterName, Operator, TagListEntry};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{Failure, FailureKind, Refused};
use crate::naming::TransferId;

/// The configuration of a DataSync create (`CreateLocationS3`, `CreateTask`,
/// `StartTaskExecution`): sent once, never retried by the SDK. DataSync takes no idempotency
/// token, so the SDK's retry after an answer that came too late (a read timeout, a dropped
/// connection, a 5xx after the work was done) created a second location or task, or started a
/// second execution for one run request. Instead the create intent recorded in the status stays,
/// and the next reconcile (10 s later, `Error::retry_after`) searches for what the first attempt
/// made before it creates anything.
pub fn sent_once() -> aws_sdk_datasync::config::Builder {
    aws_sdk_datasync::config::Builder::default().retry_config(aws_smithy_types::retry::RetryConfig::disabled())
}

/// Sends a DataSync create built with [`sent_once`], and sends it again (up to three times in
/// all, 1 s and then 2 s later) only when DataSync answered that it throttled it: that answer
/// says the request was refused, not done. Any other failure is returned at once.
pub async fn create<T, E, F, Fut>(mut send: F) -> Result<T, SdkError<E, Response>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, Response>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut attempt = 1;
    loop {
        match send().await {
            Err(err) if attempt < 3 && super::classify(&err).kind == FailureKind::Throttled => {
                tokio::time::sleep(std::time::Duration::from_secs(attempt)).await;
                attempt += 1;
            }
            answer => return answer,
        }
    }
}

/// DataSync tag entries for Ferry's tags plus `extra`.
pub fn tag_entries(id: &TransferId, extra: &[(&str, &str)]) -> Vec<TagListEntry> {
    id.tags()
        .into_iter()
        .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .filter_map(|(k, v)| TagListEntry::builder().key(k).value(v).build().ok())
        .collect()
}

/// The tags of a DataSync resource.
pub async fn tags(client: &Client, arn: &str) -> Result<Vec<(String, String)>, Failure> {
    let entries = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await?;
    Ok(entries
        .iter()
        .map(|t| (t.key().to_string(), t.value().unwrap_or_default().to_string()))
        .collect())
}

/// True when the resource carries the transfer's uid tag; a resource that vanished is not ours.
pub async fn owned(client: &Client, arn: &str, id: &TransferId) -> Result<bool, Failure> {
    match tags(client, arn).await {
        Ok(tags) => Ok(id.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))),
        Err(f) if f.kind == FailureKind::NotFound => Ok(false),
        Err(f) => Err(f),
    }
}

/// Whether a location URI can be a `ListLocations` filter value: DataSync's API model allows
/// at most 255 characters of `[0-9a-zA-Z_ \-:*.\\/?]` there (pure). Subdirectories may hold
/// more (`+`, `(`, `)`, longer paths), so such a URI is searched without a filter.
pub fn filterable(uri: &str) -> bool {
    uri.len() <= 255
        && uri
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_ -:*./\\?".contains(c))
}

/// Every location of the caller in the client's region as (ARN, URI), optionally only those
/// with one URI (filtered by DataSync when the URI can be a filter value, and checked again
/// here).
pub async fn list_locations(client: &Client, uri: Option<&str>) -> Result<Vec<(String, String)>, Failure> {
    let filter = match uri.filter(|u| filterable(u)) {
        Some(u) => Some(
            LocationFilter::builder()
                .name(LocationFilterName::LocationUri)
                .values(u)
                .operator(Operator::Eq)
                .build()?,
        ),
        None => None,
    };
    let entries = client
        .list_locations()
        .set_filters(filter.map(|f| vec![f]))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await?;
    Ok(entries
        .iter()
        .filter_map(|entry| Some((entry.location_arn()?, entry.location_uri()?)))
        .filter(|(_, found)| uri.is_none_or(|u| same_uri(u, found)))
        .map(|(arn, found)| (arn.to_string(), found.to_string()))
        .collect())
}

/// Every task of the caller in the client's region as (ARN, name).
pub async fn list_tasks(client: &Client) -> Result<Vec<(String, String)>, Failure> {
    let entries = client
        .list_tasks()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await?;
    Ok(entries
        .iter()
        .filter_map(|entry| {
            Some((
                entry.task_arn()?.to_string(),
                entry.name().unwrap_or_default().to_string(),
            ))
        })
        .collect())
}

/// The tasks named `name` that carry the transfer's uid tag, leaving out `skip` (tasks Ferry
/// retired): what a crash between `CreateTask` and the status write left for adoption. Only
/// tasks of that name have their tags read; one that vanished meanwhile is not ours.
pub async fn owned_tasks_named(
    client: &Client,
    name: &str,
    id: &TransferId,
    skip: &[String],
) -> Result<Vec<String>, Refused> {
    let tasks = list_tasks(client).await.map_err(|failure| Refused {
        action: "datasync:ListTasks",
        failure,
    })?;
    let mut owned_tasks = Vec::new();
    for (arn, _) in tasks.into_iter().filter(|(arn, n)| n == name && !skip.contains(arn)) {
        if owned(client, &arn, id).await.map_err(|failure| Refused {
            action: "datasync:ListTagsForResource",
            failure,
        })? {
            owned_tasks.push(arn);
        }
    }
    Ok(owned_tasks)
}

/// The executions of a task as (ARN, status), in the order DataSync lists them (which DataSync
/// does not document: callers must not rely on it).
pub async fn list_executions(client: &Client, task_arn: &str) -> Result<Vec<(String, String)>, Failure> {
    let entries = client
        .list_task_executions()
        .task_arn(task_arn)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await?;
    Ok(entries
        .iter()
        .filter_map(|entry| {
            let status = entry.status().map(|s| s.as_str().to_string()).unwrap_or_default();
            Some((entry.task_execution_arn()?.to_string(), status))
        })
        .collect())
}

/// Location URIs compare without regard to a trailing slash.
pub fn same_uri(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uris_datasync_can_filter_on_are_filters() {
        assert!(filterable("s3://bucket-1/media/2024 photos/"));
        assert!(
            !filterable("s3://bucket-1/media/(2024)/"),
            "parentheses are no filter value"
        );
        assert!(!filterable("s3://bucket-1/a+b/"));
        assert!(!filterable(&format!("s3://b/{}/", "x".repeat(250))));
    }

    #[test]
    fn uris_compare_without_trailing_slash() {
        assert!(same_uri("s3://b/x/", "s3://b/x"));
        assert!(!same_uri("s3://b/x/", "s3://b/y/"));
    }

    mod mocked {
        use aws_sdk_datasync::operation::list_tags_for_resource::{
            ListTagsForResourceError, ListTagsForResourceOutput,
        };
        use aws_sdk_datasync::operation::list_tasks::ListTasksOutput;
        use aws_sdk_datasync::types::TaskListEntry;
        use aws_sdk_datasync::types::error::InvalidRequestException;
        use aws_smithy_mocks::{RuleMode, mock};

        use super::super::*;
        use crate::aws::mocked::{Mocked, error_meta};

        fn task(n: u32, name: &str) -> TaskListEntry {
            TaskListEntry::builder()
                .task_arn(format!("arn:aws:datasync:us-east-1:111111111111:task/task-{n:017}"))
                .name(name)
                .build()
        }

        fn arn(n: u32) -> String {
            format!("arn:aws:datasync:us-east-1:111111111111:task/task-{n:017}")
        }

        #[tokio::test]
        async fn adoption_finds_only_this_transfers_unretired_tasks_of_its_name_over_every_page() {
            let id = TransferId::new("ns", "copy", "0b5e9a9c-1111-2222-3333-444455556666");
            let ours = id.tags();
            let page1 = mock!(aws_sdk_datasync::Client::list_tasks)
                .match_requests(|r| r.next_token().is_none())
                .then_output(|| {
                    ListTasksOutput::builder()
                        .tasks(task(1, "ferry-copy"))
                        .tasks(task(2, "someone-else"))
                        .next_token("page2")
                        .build()
                });
            let page2 = mock!(aws_sdk_datasync::Client::list_tasks)
                .match_requests(|r| r.next_token() == Some("page2"))
                .then_output(|| {
                    ListTasksOutput::builder()
                        .tasks(task(3, "ferry-copy"))
                        .tasks(task(4, "ferry-copy"))
                        .tasks(task(5, "ferry-copy"))
                        .build()
                });
            // Task 1: another transfer's (same name, other uid); task 3: ours; task 4: retired
            // (its tags are never read); task 5: deleted meanwhile.
            let foreign = mock!(aws_sdk_datasync::Client::list_tags_for_resource)
                .match_requests(|r| r.resource_arn() == Some(&arn(1)))
                .then_output(|| {
                    ListTagsForResourceOutput::builder()
                        .tags(
                            TagListEntry::builder()
                                .key("ferry.dev/uid")
                                .value("other")
                                .build()
                                .unwrap(),
                        )
                        .build()
                });
            let mine = mock!(aws_sdk_datasync::Client::list_tags_for_resource)
                .match_requests(|r| r.resource_arn() == Some(&arn(3)))
                .then_output(move || {
                    ListTagsForResourceOutput::builder()
                        .set_tags(Some(
                            ours.iter()
                                .map(|(k, v)| TagListEntry::builder().key(k).value(v).build().unwrap())
                                .collect(),
                        ))
                        .build()
                });
            let gone = mock!(aws_sdk_datasync::Client::list_tags_for_resource)
                .match_requests(|r| r.resource_arn() == Some(&arn(5)))
                .then_error(|| {
                    ListTagsForResourceError::InvalidRequestException(
                        InvalidRequestException::builder()
                            .meta(error_meta(
                                "InvalidRequestException",
                                "Resource not found: the task was deleted.",
                            ))
                            .build(),
                    )
                });
            let m = Mocked::new(RuleMode::MatchAny, &[&page1, &page2, &foreign, &mine, &gone]);
            let client = m.account.datasync("us-east-1");

            let found = owned_tasks_named(&client, "ferry-copy", &id, &[arn(4)]).await.unwrap();
            assert_eq!(found, vec![arn(3)]);
            assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
            assert_eq!((foreign.num_calls(), mine.num_calls(), gone.num_calls()), (1, 1, 1));
        }

        #[tokio::test]
        async fn a_refused_tag_read_names_its_action() {
            let id = TransferId::new("ns", "copy", "0b5e9a9c-1111-2222-3333-444455556666");
            let list = mock!(aws_sdk_datasync::Client::list_tasks)
                .then_output(|| ListTasksOutput::builder().tasks(task(1, "ferry-copy")).build());
            let denied = mock!(aws_sdk_datasync::Client::list_tags_for_resource).then_error(|| {
                ListTagsForResourceError::generic(error_meta("AccessDeniedException", "not authorized"))
            });
            let m = Mocked::new(RuleMode::MatchAny, &[&list, &denied]);
            let client = m.account.datasync("us-east-1");

            let refused = owned_tasks_named(&client, "ferry-copy", &id, &[]).await.unwrap_err();
            assert_eq!(refused.action, "datasync:ListTagsForResource");
            assert_eq!(refused.failure.kind, FailureKind::AccessDenied);
        }
    }
}
