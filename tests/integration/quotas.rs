//! AWS's quotas against the real `ferry run` and the emulator, which enforces them as AWS does
//! (tests/emulator/README.md, "Quotas"): at DataSync's task quota transfers wait in line and go
//! on as slots free; one-off transfers give their task back after a successful run.

use crate::common;

use std::time::Duration;

use common::aws::{calls, emulator_call};
use common::scenario::Scenario;
use common::wait_for;
use ferry::api::{CrossAccountTransfer, Phase};
use serde_json::json;

const CONVERGE: Duration = Duration::from_secs(120);

/// Sets a quota of the scenario's Account A in the destination Region, as an increase (or here,
/// a decrease) of AWS's quota would.
fn task_quota(s: &Scenario, value: u32) {
    let body = json!({"account": s.a.id, "region": s.dst_region, "quota": "DataSyncTasks", "value": value});
    let answer = emulator_call(s.env, "POST", "/ferry-emulator/quotas", &body.to_string());
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
}

/// The reason and message of a condition.
fn condition(obj: &CrossAccountTransfer, type_: &str) -> (String, String, String) {
    obj.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

/// Waits until a transfer waits for a task slot; its Reconciling message.
async fn waiting(s: &Scenario, name: &str) -> String {
    wait_for(&format!("{name} to wait for a task slot"), CONVERGE, || {
        let api = s.api();
        async move {
            let obj = api.get(name).await.map_err(|e| e.to_string())?;
            match condition(&obj, "Reconciling") {
                (status, reason, message) if status == "True" && reason == "TaskQuotaReached" => Ok(message),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
}

fn task_calls(s: &Scenario, operation: &str) -> usize {
    calls(s.env, &format!("account={}&operation={operation}", s.a.id)).len()
}

#[tokio::test]
async fn at_the_task_quota_transfers_wait_in_line_and_go_on_as_slots_free() {
    let s = Scenario::new("tq", "us-east-1", "us-east-1").await;
    task_quota(&s, 2);
    let _op = s.operator(&[("FERRY_DATASYNC_TASK_QUOTA", "2")]);
    let names = ["q1", "q2", "q3", "q4"];
    for name in names {
        s.apply(&s.manifest(name, json!({}))).await;
    }
    // Two get the two slots; two wait, saying why and what to do.
    let (done, queued) = wait_for("two transfers done and two waiting", CONVERGE, || {
        let api = s.api();
        async move {
            let mut succeeded = Vec::new();
            let mut waiting = Vec::new();
            for name in names {
                let obj = api.get(name).await.map_err(|e| e.to_string())?;
                if obj.status.as_ref().and_then(|st| st.phase) == Some(Phase::Succeeded) {
                    succeeded.push(name);
                } else if condition(&obj, "Reconciling").1 == "TaskQuotaReached" {
                    waiting.push(name);
                }
            }
            if succeeded.len() == 2 && waiting.len() == 2 {
                Ok((succeeded, waiting))
            } else {
                Err(format!("succeeded {succeeded:?}, waiting {waiting:?}"))
            }
        }
    })
    .await;
    let mut places = Vec::new();
    for name in &queued {
        let message = waiting(&s, name).await;
        assert!(
            message.contains(&format!("account {}, {}", s.a.id, s.dst_region)),
            "{message}"
        );
        assert!(message.contains("quota 2"), "{message}");
        assert!(message.contains("--datasync-task-quota"), "{message}");
        assert!(message.contains("spec.task.release: AfterSuccess"), "{message}");
        places.push(message);
    }
    // Each says its place in line when it last looked (one created earlier may join later,
    // before it).
    assert!(places.iter().all(|m| m.contains(" waiting)")), "{places:?}");
    // The first in line is the one created first (then by uid): it goes on first.
    let mut order = Vec::new();
    for name in &queued {
        let obj = s.api().get(name).await.expect("get");
        order.push((
            obj.metadata.creation_timestamp.map(|t| t.0.as_second()),
            obj.metadata.uid,
            *name,
        ));
    }
    order.sort();
    let queued = [order[0].2, order[1].2];

    // No retry loop: while nothing frees a slot, the waiting transfers ask AWS for no task.
    let creates = task_calls(&s, "CreateTask");
    assert!(
        creates <= 4,
        "{creates} CreateTask calls for 2 tasks and 2 refusals at most"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        task_calls(&s, "CreateTask"),
        creates,
        "a waiting transfer retried CreateTask"
    );

    // Deleting a transfer frees its slot: the first in line goes on at once, then the second.
    s.delete_and_wait(done[0], CONVERGE).await;
    s.wait_recovery(queued[0], Phase::Succeeded, CONVERGE).await;
    s.delete_and_wait(done[1], CONVERGE).await;
    s.wait_recovery(queued[1], Phase::Succeeded, CONVERGE).await;
    assert_eq!(s.a.tasks(&s.dst_region).await.len(), 2);
}

#[tokio::test]
async fn one_off_transfers_release_their_task_and_pass_through_a_small_quota() {
    let s = Scenario::new("rel", "us-east-1", "us-east-1").await;
    task_quota(&s, 1);
    let _op = s.operator(&[("FERRY_DATASYNC_TASK_QUOTA", "1")]);
    for name in ["r1", "r2", "r3"] {
        s.apply(&s.manifest(name, json!({"run": "Manual", "task": {"release": "AfterSuccess"}})))
            .await;
        s.annotate(name, "ferry.dev/run", "first").await;
    }
    // One slot, three transfers: each runs, gives its task back, and the next one goes on (in
    // the order they were created, then by uid: any order here).
    for name in ["r1", "r2", "r3"] {
        s.wait_recovery(name, Phase::Succeeded, CONVERGE).await;
        wait_for(&format!("{name} to release its task"), CONVERGE, || {
            let api = s.api();
            async move {
                let obj = api.get(name).await.map_err(|e| e.to_string())?;
                let st = obj.status.unwrap_or_default();
                if st.released_at.is_some() && st.task_arn.is_none() && st.source_location_arn.is_none() {
                    Ok(())
                } else {
                    Err(format!("task {:?}", st.task_arn))
                }
            }
        })
        .await;
    }
    assert!(s.a.tasks(&s.dst_region).await.is_empty(), "every task given back");
    assert!(s.a.locations(&s.src_region).await.is_empty(), "and every location");
    let obj = s.api().get("r1").await.expect("get");
    let st = obj.status.clone().unwrap_or_default();
    assert_eq!(st.phase, Some(Phase::Succeeded));
    assert_eq!(st.history.len(), 1, "the history stays");
    assert_eq!(condition(&obj, "TaskReady").1, "Released");
    let events = s.events("r1").await;
    assert!(events.iter().any(|e| e.1 == "TaskReleased"), "{events:?}");

    // A later run request creates them again, runs once, and gives them back again.
    let starts = task_calls(&s, "StartTaskExecution");
    s.annotate("r1", "ferry.dev/run", "second").await;
    let obj = s.wait_recovery("r1", Phase::Succeeded, CONVERGE).await;
    assert_eq!(
        obj.status
            .as_ref()
            .and_then(|st| st.last_run.as_ref())
            .and_then(|r| r.token.as_deref()),
        Some("second")
    );
    wait_for("r1 to release its task again", CONVERGE, || {
        let api = s.api();
        async move {
            let st = api
                .get("r1")
                .await
                .map_err(|e| e.to_string())?
                .status
                .unwrap_or_default();
            if st.task_arn.is_none() && st.history.len() == 2 {
                Ok(())
            } else {
                Err(format!("task {:?}, history {}", st.task_arn, st.history.len()))
            }
        }
    })
    .await;
    assert_eq!(starts, 3, "one execution per transfer");
    assert_eq!(
        task_calls(&s, "StartTaskExecution"),
        starts + 1,
        "one execution for the new request"
    );
}

#[tokio::test]
async fn at_the_role_quota_the_transfer_says_so_and_goes_on_once_it_is_raised() {
    let s = Scenario::new("rq", "us-east-1", "us-east-1").await;
    let roles = s.a.roles().await.len();
    let quota = |value: usize| {
        let body = json!({"account": s.a.id, "quota": "IamRoles", "value": value});
        let answer = emulator_call(s.env, "POST", "/ferry-emulator/quotas", &body.to_string());
        assert!(answer.contains(" 200 "), "{answer}");
    };
    quota(roles);
    let _op = s.operator(&[("FERRY_STALLED_RETRY", "2s"), ("FERRY_PROPAGATION_WINDOW", "0s")]);
    s.apply(&s.manifest("r", json!({}))).await;
    let obj = s.wait_phase("r", Phase::Failed, CONVERGE).await;
    let (status, reason, message) = condition(&obj, "Stalled");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "RoleQuotaReached"),
        "{message}"
    );
    assert!(
        message.contains(&format!("IAM's quota of roles is reached in account {}", s.a.id)),
        "{message}"
    );
    assert!(message.contains("Cannot exceed quota for RolesPerAccount"), "{message}");
    quota(roles + 1);
    s.wait_recovery("r", Phase::Succeeded, CONVERGE).await;
}
