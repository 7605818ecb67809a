//! The local executor: run a fixed program with an argv array on this host.
//!
//! There is deliberately no shell anywhere on this path. Runbook values come from incidents and
//! from people in Slack; handed to `sh -c`, a value like `; rm -rf /` or `$(curl …)` would be code.
//! Passed as one argv element to `execve`, it is only ever data, whatever characters it holds. (The
//! catalog also checks every value against its parameter's regex; this is the second wall.)
//!
//! The program gets a null stdin and runs in its own process group, so on timeout the whole group
//! (the program and anything it started) is killed, not just the leader. stdout and stderr are read
//! together into one tail, roughly interleaved, and only the last `output_cap` bytes are kept.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use super::{ExecutorSettings, OutputTail, human};
use crate::runbook::plan::{LocalPlan, Progress, RunReport, RunStatus};

/// How long output is still read after the program exits, in case something it started in the
/// background keeps the pipes open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(250);

/// How long to wait for a killed program to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(2);

/// Runs the program in `plan` until it exits or `limit` passes. Never fails: a program that cannot
/// start is a failed run with a summary that says why.
pub(super) async fn run(
    settings: &ExecutorSettings,
    plan: &LocalPlan,
    limit: Duration,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> RunReport {
    let mut command = Command::new(&plan.program);
    command.args(&plan.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    if let Some(dir) = &plan.dir {
        command.current_dir(dir);
    }
    #[cfg(unix)]
    command.process_group(0);

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return not_started(plan, &error),
    };
    let pid = child.id();
    tracing::info!(process.pid = pid, "started {}", plan.program);
    let started = match pid {
        Some(pid) => format!("started {} (pid {pid})", plan.program),
        None => format!("started {}", plan.program),
    };
    progress(Progress::Started { summary: started, link: None });

    let mut tail = OutputTail::new(settings.output_cap);
    let mut exit = None;
    let waited = timeout_at(Instant::now() + limit, collect(&mut child, &mut tail, &mut exit)).await;
    let (status, summary) = match (waited, exit) {
        (Ok(Ok(())), Some(exit)) | (Err(_), Some(exit)) => (status_of(exit), describe(exit)),
        (Ok(Ok(())), None) => (RunStatus::Failed, "exit status unknown".to_owned()),
        (Ok(Err(error)), _) => {
            kill(&mut child, pid).await;
            (RunStatus::Failed, format!("lost track of {}: {error}", plan.program))
        }
        (Err(_), None) => {
            kill(&mut child, pid).await;
            tracing::warn!(process.pid = pid, "{} timed out after {}; killed", plan.program, human(limit));
            (RunStatus::TimedOut, format!("timed out after {}; killed", human(limit)))
        }
    };
    RunReport { status, summary, link: None, output_tail: tail.into_string() }
}

/// Reads stdout and stderr into `tail` until both close, recording the exit status in `exit` as
/// soon as it is known. Once the program has exited, output is drained for [`DRAIN_AFTER_EXIT`] at
/// most. `exit` lives outside so a timeout after the exit still reports the exit.
async fn collect(child: &mut Child, tail: &mut OutputTail, exit: &mut Option<ExitStatus>) -> io::Result<()> {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_buf, mut err_buf) = ([0_u8; 4096], [0_u8; 4096]);
    let mut drain_deadline = None;
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf) => match read {
                Ok(0) | Err(_) => stdout = None,
                Ok(n) => tail.push(&out_buf[..n]),
            },
            read = read_some(&mut stderr, &mut err_buf) => match read {
                Ok(0) | Err(_) => stderr = None,
                Ok(n) => tail.push(&err_buf[..n]),
            },
            status = child.wait(), if exit.is_none() => {
                *exit = Some(status?);
                drain_deadline = Some(Instant::now() + DRAIN_AFTER_EXIT);
            },
            () = sleep_until_some(drain_deadline) => return Ok(()),
        }
    }
    if exit.is_none() {
        *exit = Some(child.wait().await?);
    }
    Ok(())
}

/// Reads from the pipe, or waits forever once it is closed (so `select!` ignores it).
async fn read_some<R>(pipe: &mut Option<R>, buf: &mut [u8]) -> io::Result<usize>
where
    R: AsyncRead + Unpin,
{
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Kills the program's process group (everything it started), then the program, and reaps it.
async fn kill(child: &mut Child, pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid {
        kill_group(pid).await;
    }
    #[cfg(not(unix))]
    let _ = pid;
    if let Err(error) = child.start_kill() {
        tracing::debug!("killing the program: {error}");
    }
    if timeout(REAP_GRACE, child.wait()).await.is_err() {
        tracing::warn!(process.pid = pid, "a killed program was not reaped within {}", human(REAP_GRACE));
    }
}

/// Sends SIGKILL to process group `pgid` with the `kill` program: std has no `killpg`, and this
/// crate forbids the `unsafe` a libc call needs. Still no shell: a fixed argv. The group cannot
/// have been reused, since its leader is not reaped yet.
#[cfg(unix)]
async fn kill_group(pgid: u32) {
    let killed = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match timeout(REAP_GRACE, killed).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tracing::debug!(process.pid = pgid, "kill of the process group ended with {status}"),
        Ok(Err(error)) => tracing::warn!(process.pid = pgid, "could not run kill for the process group: {error}"),
        Err(_) => tracing::warn!(process.pid = pgid, "kill of the process group did not finish"),
    }
}

fn not_started(plan: &LocalPlan, error: &io::Error) -> RunReport {
    let why = match error.kind() {
        io::ErrorKind::NotFound if plan.dir.as_deref().is_some_and(|dir| !std::path::Path::new(dir).is_dir()) => {
            format!("working directory {} not found", plan.dir.as_deref().unwrap_or_default())
        }
        io::ErrorKind::NotFound => "program not found".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string(),
    };
    tracing::warn!("could not start {}: {why}", plan.program);
    RunReport {
        status: RunStatus::Failed,
        summary: format!("could not start {}: {why}", plan.program),
        link: None,
        output_tail: String::new(),
    }
}

fn status_of(exit: ExitStatus) -> RunStatus {
    if exit.success() { RunStatus::Succeeded } else { RunStatus::Failed }
}

/// `exit status 0`, `exit status 3`, `killed by signal 9`.
fn describe(exit: ExitStatus) -> String {
    if let Some(code) = exit.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = exit.signal() {
            return format!("killed by signal {signal}");
        }
    }
    exit.to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::{ExecError, Executors};
    use super::*;
    use crate::runbook::plan::{Execution, Plan};

    fn executors(output_cap: usize) -> Executors {
        let settings = ExecutorSettings {
            poll_interval: Duration::from_millis(20),
            http_timeout: Duration::from_secs(2),
            output_cap,
        };
        Executors::new(settings, Arc::new(|_| None))
    }

    fn execution(program: &str, args: &[&str], timeout: Duration) -> Execution {
        let plan = LocalPlan {
            program: program.to_owned(),
            args: args.iter().map(|&arg| arg.to_owned()).collect(),
            dir: None,
        };
        Execution { runbook: "restart-service".to_owned(), plan: Plan::Local(plan), timeout }
    }

    async fn run(execution: &Execution, output_cap: usize) -> Result<RunReport, ExecError> {
        executors(output_cap).run(execution, &|_| {}).await
    }

    #[tokio::test]
    async fn a_program_that_succeeds_reports_its_output() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);

        let report = executors(4096)
            .run(&execution("echo", &["restarted", "payments"], Duration::from_secs(5)), &move |progress| {
                sink.lock().expect("progress lock").push(progress);
            })
            .await
            .expect("local runs never fail to start with an error");

        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(report.summary, "exit status 0");
        assert_eq!(report.output_tail, "restarted payments\n");
        let seen = seen.lock().expect("progress lock").clone();
        assert!(
            matches!(seen.as_slice(), [Progress::Started { summary, link: None }] if summary.starts_with("started echo (pid ")),
            "got {seen:?}"
        );
    }

    #[tokio::test]
    async fn a_program_that_fails_reports_its_exit_status_and_stderr() {
        let script = "echo checking; echo 'disk still full' >&2; exit 3";

        let report = run(&execution("/bin/sh", &["-c", script], Duration::from_secs(5)), 4096).await.expect("ran");

        assert_eq!(report.status, RunStatus::Failed);
        assert_eq!(report.summary, "exit status 3");
        assert!(report.output_tail.contains("checking\n"), "stdout kept: {:?}", report.output_tail);
        assert!(report.output_tail.contains("disk still full\n"), "stderr kept: {:?}", report.output_tail);
    }

    #[tokio::test]
    async fn output_is_capped_keeping_the_end() {
        let script = "i=1; while [ $i -le 2000 ]; do echo \"line $i\"; i=$((i+1)); done";

        let report = run(&execution("/bin/sh", &["-c", script], Duration::from_secs(5)), 256).await.expect("ran");

        assert_eq!(report.status, RunStatus::Succeeded);
        assert!(report.output_tail.len() <= 256, "capped: {} bytes", report.output_tail.len());
        assert!(report.output_tail.starts_with("line "), "starts at a line: {:?}", report.output_tail);
        assert!(report.output_tail.ends_with("line 1999\nline 2000\n"), "keeps the end: {:?}", report.output_tail);
    }

    #[tokio::test]
    async fn a_program_past_its_timeout_is_killed_and_reported_timed_out() {
        let started = std::time::Instant::now();

        let report = run(&execution("sleep", &["30"], Duration::from_millis(200)), 4096).await.expect("ran");

        assert_eq!(report.status, RunStatus::TimedOut);
        assert_eq!(report.summary, "timed out after 200ms; killed");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_timeout_also_kills_what_the_program_started() {
        let script = "sleep 30 & echo $!; wait";

        let report = run(&execution("/bin/sh", &["-c", script], Duration::from_millis(300)), 4096).await.expect("ran");

        assert_eq!(report.status, RunStatus::TimedOut);
        let pid: u32 = report.output_tail.trim().parse().expect("the script prints the background pid");
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            // Gone, or a zombie waiting for its new parent to reap it: either way, not running.
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let running = state.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'));
            if !running {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "background sleep {pid} still running: {state}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn shell_metacharacters_in_arguments_are_passed_literally() {
        let dir = tempfile::tempdir().expect("temp dir");
        let marker = dir.path().join("pwned");
        let marker = marker.to_str().expect("utf-8 temp path");
        let hostile = [
            "; rm -rf /".to_owned(),
            format!("$(touch {marker})"),
            format!("`touch {marker}`"),
            format!("a\ntouch {marker}"),
            "| cat /etc/passwd && echo $HOME > x".to_owned(),
        ];
        let args: Vec<&str> = hostile.iter().map(String::as_str).collect();

        let report = run(&execution("echo", &args, Duration::from_secs(5)), 4096).await.expect("ran");

        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(report.output_tail, format!("{}\n", hostile.join(" ")), "echo should see each value verbatim");
        assert!(!dir.path().join("pwned").exists(), "no shell may have run the substitution");
        assert!(!std::path::Path::new("x").exists(), "no shell may have redirected output");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_failed_run_that_says_so() {
        let program = "/nonexistent/warroom-no-such-program";

        let report = run(&execution(program, &[], Duration::from_secs(5)), 4096).await.expect("ran");

        assert_eq!(report.status, RunStatus::Failed);
        assert_eq!(report.summary, format!("could not start {program}: program not found"));
    }

    #[tokio::test]
    async fn the_program_runs_in_the_configured_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut execution = execution("pwd", &[], Duration::from_secs(5));
        let path = dir.path().canonicalize().expect("canonical temp dir");
        let path = path.to_str().expect("utf-8 temp path").to_owned();
        if let Plan::Local(plan) = &mut execution.plan {
            plan.dir = Some(path.clone());
        }

        let report = run(&execution, 4096).await.expect("ran");

        assert_eq!(report.output_tail, format!("{path}\n"));
    }

    #[tokio::test]
    async fn a_program_that_exits_while_its_child_holds_the_pipes_is_not_waited_for() {
        let started = std::time::Instant::now();

        let report = run(&execution("/bin/sh", &["-c", "echo bye; sleep 3 &"], Duration::from_secs(10)), 4096)
            .await
            .expect("ran");

        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(report.output_tail, "bye\n");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }
}
