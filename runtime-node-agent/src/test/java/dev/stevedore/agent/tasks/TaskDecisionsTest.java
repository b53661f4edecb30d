package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.containers.ContainerRecord;
import dev.stevedore.agent.network.TaskNetwork;
import dev.stevedore.agent.tasks.TaskAction.AwaitMonitorExit;
import dev.stevedore.agent.tasks.TaskAction.Forget;
import dev.stevedore.agent.tasks.TaskAction.KillAt;
import dev.stevedore.agent.tasks.TaskAction.LookAgain;
import dev.stevedore.agent.tasks.TaskAction.Pause;
import dev.stevedore.agent.tasks.TaskAction.Release;
import dev.stevedore.agent.tasks.TaskAction.ReportFinal;
import dev.stevedore.agent.tasks.TaskAction.Resume;
import dev.stevedore.agent.tasks.TaskAction.Save;
import dev.stevedore.agent.tasks.TaskAction.Signal;
import dev.stevedore.agent.tasks.TaskAction.Start;
import dev.stevedore.agent.tasks.TaskAction.StartCreated;
import dev.stevedore.agent.tasks.TaskAction.WriteStatus;
import dev.stevedore.agent.tasks.TaskDecisions.ExitFile;
import dev.stevedore.agent.tasks.TaskDecisions.Found;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskSpec.DesiredState;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.api.v1alpha1.TaskStatus.Phase;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Every lifecycle transition of a task, decided without a node, a runtime or an API server. */
class TaskDecisionsTest {
    private static final String NODE = "node-1";
    private static final String UID = "0a1b2c3d-0000-4000-8000-000000000001";
    private static final Instant NOW = Instant.parse("2026-12-01T10:00:00.250Z");
    private static final Instant STARTED = Instant.parse("2026-12-01T09:00:00Z");
    private static final ContainerRecord PREPARED = new ContainerRecord(
            "c-uid", "ns", "box", 3L, "img", "sha256:i", "overlayfs", "snap-1", "sha256:s", "runc", List.of(), null);

    private final TaskDecisions decide = new TaskDecisions(NODE);

    // --- fixtures ---------------------------------------------------------------------------------------------

    private static Task task(long generation, DesiredState desired, String signal, Long grace, TaskStatus status) {
        Task t = Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: t, namespace: ns, uid: %s, generation: %d}
                """.formatted(UID, generation), Task.class);
        t.setSpec(new TaskSpec("box", NODE, desired, signal, grace, null));
        t.setStatus(status);
        return t;
    }

    private static Task task(DesiredState desired, TaskStatus status) {
        return task(1, desired, null, null, status);
    }

    private static Container container(long generation, String runtime, boolean deleting) {
        return Serialization.unmarshal(
                """
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: box, namespace: ns, uid: c-uid, generation: %d%s}
                spec: {image: img%s}
                """.formatted(
                                generation,
                                deleting ? ", deletionTimestamp: '2026-12-01T09:59:00Z'" : "",
                                runtime == null ? "" : ", runtime: {name: " + runtime + "}"),
                Container.class);
    }

    private static TaskRecord creating() {
        return TaskRecord.creating(UID, "ns", "t", "c-uid", "overlayfs", "snap-1", "runc", "/b", 1L, null);
    }

    private static final ProcessId TASK_PROCESS = new ProcessId(4242L, 81_000L);
    private static final ProcessId CONMON = new ProcessId(4240L, 80_990L);

    private static TaskRecord running() {
        return creating().created(TASK_PROCESS, CONMON).started(STARTED);
    }

    private TaskStatus statusOf(TaskRecord rec) {
        return decide.statusOf(rec);
    }

    private List<TaskAction> reconcile(Task task, TaskRecord rec) {
        return decide.reconcile(
                task, rec, Optional.of(container(3, null, false)), Optional.of(PREPARED), Optional.empty(), NOW);
    }

    // --- a Task without a record ------------------------------------------------------------------------------

    @Test
    void startsOnceItsContainerIsPreparedOnTheNode() {
        assertThat(reconcile(task(DesiredState.Running, null), null)).containsExactly(new Start("runc", PREPARED, 1L));
        TaskStatus pending = new TaskStatus(Phase.Pending, null, null, null, null, null, "Bound", null, 1L, null);
        assertThat(reconcile(task(DesiredState.Running, pending), null))
                .containsExactly(new Start("runc", PREPARED, 1L));
    }

    @Test
    void aSecondTaskOfAContainerThatHasOneHereEndsAlreadyExistsAndDoesNotStart() {
        TaskRecord other = TaskRecord.creating(
                        "0a1b2c3d-0000-4000-8000-000000000002",
                        "ns",
                        "first",
                        "c-uid",
                        "overlayfs",
                        "snap-1",
                        "runc",
                        "/b2",
                        1L,
                        null)
                .created(new ProcessId(4141L, 70_000L), new ProcessId(4140L, 69_990L))
                .started(STARTED);
        List<TaskAction> plan = decide.reconcile(
                task(DesiredState.Running, null),
                null,
                Optional.of(container(3, null, false)),
                Optional.of(PREPARED),
                Optional.of(other),
                NOW);

        assertThat(plan).singleElement().as("no Start").isInstanceOf(WriteStatus.class);
        TaskStatus status = ((WriteStatus) plan.get(0)).status();
        assertThat(status.phase()).isEqualTo(Phase.Deleted);
        assertThat(status.reason()).isEqualTo("AlreadyExists");
        assertThat(status.message())
                .isEqualTo("Container box already has task first on node node-1; a Container runs one task at a"
                        + " time, and only the operator binds Tasks to nodes (leave spec.nodeName empty)");
        assertThat(status.exitedAt()).isEqualTo("2026-12-01T10:00:00Z");
    }

    @Test
    void startsOnTheRuntimeRecordedWhenItsContainerWasPrepared() {
        ContainerRecord crun = new ContainerRecord(
                "c-uid",
                "ns",
                "box",
                3L,
                "img",
                "sha256:i",
                "overlayfs",
                "snap-1",
                "sha256:s",
                "crun",
                List.of(),
                null);
        assertThat(decide.reconcile(
                        task(DesiredState.Running, null),
                        null,
                        Optional.of(container(3, "runc", false)),
                        Optional.of(crun),
                        Optional.empty(),
                        NOW))
                .as("the live object's runtime may have changed since; what was prepared runs")
                .containsExactly(new Start("crun", crun, 1L));
    }

    @Test
    void endsStartFailedWhenTheNodeGaveUpOnItsContainerAsItIsNow() {
        Container stalled = container(3, null, false);
        stalled.setStatus(new ContainerStatus(
                null,
                null,
                null,
                null,
                null,
                3L,
                List.of(
                        Conditions.of(null, ContainerStatus.READY, "False", "SpecRejected", "no user app", 3L),
                        Conditions.of(null, Conditions.STALLED, "True", "SpecRejected", "no user app", 3L))));
        List<TaskAction> plan = decide.reconcile(
                task(DesiredState.Running, null), null, Optional.of(stalled), Optional.empty(), Optional.empty(), NOW);
        assertThat(plan).singleElement().isInstanceOfSatisfying(TaskAction.WriteStatus.class, write -> {
            assertThat(write.status().phase()).isEqualTo(Phase.Deleted);
            assertThat(write.status().reason()).isEqualTo("StartFailed");
            assertThat(write.status().message())
                    .isEqualTo("Container box cannot run on node node-1: SpecRejected: no user app");
        });

        Container changedSince = container(4, null, false);
        changedSince.setStatus(stalled.getStatus());
        assertThat(decide.reconcile(
                        task(DesiredState.Running, null),
                        null,
                        Optional.of(changedSince),
                        Optional.empty(),
                        Optional.empty(),
                        NOW))
                .as("stalled at generation 3 says nothing of generation 4: wait for the node")
                .isEmpty();

        Container retrying = container(3, null, false);
        retrying.setStatus(new ContainerStatus(
                null,
                null,
                null,
                null,
                null,
                3L,
                List.of(Conditions.of(
                        null, ContainerStatus.READY, "False", "RegistryUnavailable", "retrying in 4s", 3L))));
        assertThat(decide.reconcile(
                        task(DesiredState.Running, null),
                        null,
                        Optional.of(retrying),
                        Optional.empty(),
                        Optional.empty(),
                        NOW))
                .as("a failure the node retries: wait")
                .isEmpty();
    }

    @Test
    void waitsWithoutPollingWhileItsContainerIsNotPreparedHere() {
        Task t = task(DesiredState.Running, null);
        assertThat(decide.reconcile(t, null, Optional.empty(), Optional.of(PREPARED), Optional.empty(), NOW))
                .isEmpty();
        assertThat(decide.reconcile(
                        t, null, Optional.of(container(3, null, false)), Optional.empty(), Optional.empty(), NOW))
                .isEmpty();
        assertThat(decide.reconcile(
                        t, null, Optional.of(container(3, null, true)), Optional.of(PREPARED), Optional.empty(), NOW))
                .as("the Container is going away")
                .isEmpty();
        assertThat(decide.reconcile(
                        t, null, Optional.of(container(4, null, false)), Optional.of(PREPARED), Optional.empty(), NOW))
                .as("the node has only generation 3 prepared")
                .isEmpty();
    }

    @Test
    void stoppedBeforeItStartedIsCancelled() {
        assertThat(reconcile(task(DesiredState.Stopped, null), null))
                .containsExactly(new WriteStatus(new TaskStatus(
                        Phase.Deleted,
                        NODE,
                        null,
                        null,
                        null,
                        "2026-12-01T10:00:00Z",
                        "Cancelled",
                        "stopped before it was started",
                        1L,
                        null)));
    }

    @Test
    void oneThatRanHereButHasNoRecordIsLostNotStartedAgain() {
        TaskStatus running =
                new TaskStatus(Phase.Running, NODE, 7L, "2026-12-01T09:00:00Z", null, null, "Started", null, 1L, null);
        assertThat(reconcile(task(DesiredState.Running, running), null))
                .containsExactly(new WriteStatus(new TaskStatus(
                        Phase.Deleted,
                        NODE,
                        null,
                        null,
                        null,
                        "2026-12-01T10:00:00Z",
                        "Lost",
                        "the node has no record of this task",
                        1L,
                        stalled("Lost", "the node has no record of this task"))));
    }

    @Test
    void oneAlreadyDeletedIsLeftAlone() {
        TaskStatus deleted = new TaskStatus(Phase.Deleted, NODE, 7L, null, 0, null, "Completed", null, 1L, null);
        assertThat(reconcile(task(DesiredState.Running, deleted), null)).isEmpty();
    }

    @Test
    void aFailedStartEndsStartFailedAndReleasesWhatItHeld() {
        TaskRecord failed = creating().exited(null, NOW, "StartFailed", "exec: no such file");
        TaskRecord released = failed.releasedNow();
        assertThat(decide.startFailed(creating(), "exec: no such file", NOW))
                .containsExactly(
                        new Save(failed), new Release(), new Save(released), new ReportFinal(statusOf(released)));
        assertThat(statusOf(released))
                .isEqualTo(new TaskStatus(
                        Phase.Deleted,
                        NODE,
                        null,
                        null,
                        null,
                        "2026-12-01T10:00:00Z",
                        "StartFailed",
                        "exec: no such file",
                        1L,
                        stalled("StartFailed", "exec: no such file")));
    }

    // --- a recorded, live task and its Task object ----------------------------------------------------------------

    @Test
    void writesNothingWhileTheStatusSaysWhatTheRecordSays() {
        TaskRecord rec = running();
        assertThat(reconcile(task(DesiredState.Running, statusOf(rec)), rec)).isEmpty();
    }

    @Test
    void aTaskOnANetworkShowsItsAddressesWhileItRunsAndNotOnceDeleted() throws Exception {
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        TaskNetwork attached = new TaskNetwork(
                "net",
                json.createObjectNode(),
                "/run/stevedore/netns/" + UID,
                "eth0",
                null,
                (com.fasterxml.jackson.databind.node.ObjectNode)
                        json.readTree("{\"ips\": [{\"address\": \"10.213.16.7/24\"}, {\"address\": \"fd00::7/64\"}]}"));
        TaskRecord rec = running().attached(attached);

        assertThat(statusOf(rec).ips()).containsExactly("10.213.16.7", "fd00::7");
        assertThat(statusOf(rec.exited(0, NOW, "Completed", "exit code 0").releasedNow())
                        .ips())
                .as("released: the addresses may be another task's by now")
                .isNull();
    }

    @Test
    void reportsItsStatusWhenTheObjectsDiffers() {
        TaskRecord rec = running();
        assertThat(reconcile(task(DesiredState.Running, null), rec)).containsExactly(new WriteStatus(statusOf(rec)));
        assertThat(statusOf(rec))
                .isEqualTo(new TaskStatus(
                        Phase.Running,
                        NODE,
                        4242L,
                        "2026-12-01T09:00:00Z",
                        null,
                        null,
                        "Started",
                        "running as pid 4242",
                        1L,
                        null));
    }

    @Test
    void aNewGenerationIsRecordedAndObserved() {
        TaskRecord rec = running();
        TaskRecord next = rec.withGeneration(2L);
        assertThat(reconcile(task(2, DesiredState.Running, null, null, statusOf(rec)), rec))
                .containsExactly(new Save(next), new WriteStatus(statusOf(next)));
    }

    @Test
    void pausesAndResumes() {
        TaskRecord rec = running();
        TaskRecord paused = rec.paused();
        assertThat(reconcile(task(DesiredState.Paused, statusOf(rec)), rec))
                .containsExactly(new Pause(), new Save(paused), new WriteStatus(statusOf(paused)));
        assertThat(statusOf(paused).phase()).isEqualTo(Phase.Paused);
        assertThat(reconcile(task(DesiredState.Running, statusOf(paused)), paused))
                .containsExactly(new Resume(), new Save(rec), new WriteStatus(statusOf(rec)));
        assertThat(reconcile(task(DesiredState.Paused, statusOf(paused)), paused))
                .as("already paused")
                .isEmpty();
    }

    @Test
    void aTaskBeingCreatedIsLookedAtAgainShortly() {
        assertThat(reconcile(task(DesiredState.Running, null), creating()))
                .containsExactly(new LookAgain(Duration.ofSeconds(2)));
    }

    @Test
    void aStopSendsTheSignalOnceAndArmsTheKillForTheEndOfTheGracePeriod() {
        TaskRecord rec = running();
        TaskRecord stopping = rec.stopping(NOW, "SIGINT", 5);
        assertThat(reconcile(task(1, DesiredState.Stopped, "SIGINT", 5L, statusOf(rec)), rec))
                .containsExactly(
                        new Save(stopping),
                        new Signal("SIGINT"),
                        new KillAt(NOW.plusSeconds(5)),
                        new WriteStatus(statusOf(stopping)));
        assertThat(statusOf(stopping))
                .extracting(TaskStatus::phase, TaskStatus::reason, TaskStatus::message)
                .containsExactly(Phase.Stopped, "Stopping", "sent SIGINT; SIGKILL after 5s");

        // Asked again (a later event, or a restarted agent): no second signal, the kill armed again.
        assertThat(reconcile(task(1, DesiredState.Stopped, "SIGINT", 5L, statusOf(stopping)), stopping))
                .containsExactly(new KillAt(NOW.plusSeconds(5)));
    }

    @Test
    void aStopWithoutSignalOrGraceIsSigtermAndTenSeconds() {
        TaskRecord rec = running();
        TaskRecord stopping = rec.stopping(NOW, "SIGTERM", 10);
        assertThat(reconcile(task(1, DesiredState.Stopped, null, null, statusOf(rec)), rec))
                .containsExactly(
                        new Save(stopping),
                        new Signal("SIGTERM"),
                        new KillAt(NOW.plusSeconds(10)),
                        new WriteStatus(statusOf(stopping)));
    }

    @Test
    void aStopWithoutGraceIsOneSigkill() {
        TaskRecord rec = running();
        TaskRecord stopping = rec.stopping(NOW, "SIGKILL", 0);
        assertThat(reconcile(task(1, DesiredState.Stopped, "SIGTERM", 0L, statusOf(rec)), rec))
                .containsExactly(new Save(stopping), new Signal("SIGKILL"), new WriteStatus(statusOf(stopping)));
    }

    @Test
    void aPausedTaskIsResumedBeforeTheStopSignalSoItCanActOnIt() {
        TaskRecord paused = running().paused();
        TaskRecord stopping = paused.stopping(NOW, "SIGTERM", 3);
        TaskRecord resumed = stopping.resumed();
        assertThat(reconcile(task(1, DesiredState.Stopped, "SIGTERM", 3L, statusOf(paused)), paused))
                .containsExactly(
                        new Save(stopping),
                        new Resume(),
                        new Save(resumed),
                        new Signal("SIGTERM"),
                        new KillAt(NOW.plusSeconds(3)),
                        new WriteStatus(statusOf(resumed)));
    }

    @Test
    void aStoppingTaskIsNeitherPausedNorResumed() {
        TaskRecord stopping = running().stopping(NOW, "SIGTERM", 3);
        assertThat(reconcile(task(DesiredState.Paused, statusOf(stopping)), stopping))
                .isEmpty();
    }

    @Test
    void theKillAtTheEndOfTheGracePeriodIsForALiveTaskOnly() {
        TaskRecord stopping = running().stopping(NOW, "SIGTERM", 3);
        assertThat(decide.graceOver(stopping)).containsExactly(new Signal("SIGKILL"));
        assertThat(decide.graceOver(stopping.exited(143, NOW, "Signaled", "killed by SIGTERM")))
                .isEmpty();
        assertThat(decide.graceOver(null)).isEmpty();
    }

    // --- exits ------------------------------------------------------------------------------------------------

    private List<TaskAction> exit(int code, boolean oom) {
        return decide.exited(running(), new ExitFile(code, NOW, oom), true);
    }

    private TaskStatus finalStatus(List<TaskAction> plan) {
        assertThat(plan).hasSize(4);
        return ((ReportFinal) plan.get(3)).status();
    }

    @Test
    void anExitIsRecordedThenReleasedThenReported() {
        TaskRecord exited = running().exited(0, NOW, "Completed", "exited with code 0");
        TaskRecord released = exited.releasedNow();
        assertThat(exit(0, false))
                .containsExactly(
                        new Save(exited), new Release(), new Save(released), new ReportFinal(statusOf(released)));
        assertThat(statusOf(released))
                .isEqualTo(new TaskStatus(
                        Phase.Deleted,
                        NODE,
                        4242L,
                        "2026-12-01T09:00:00Z",
                        0,
                        "2026-12-01T10:00:00Z",
                        "Completed",
                        "exited with code 0",
                        1L,
                        null));
    }

    @Test
    void exitCodesAreClassified() {
        assertThat(finalStatus(exit(3, false)))
                .extracting(TaskStatus::reason, TaskStatus::message, TaskStatus::exitCode)
                .containsExactly("Error", "exited with code 3", 3);
        assertThat(finalStatus(exit(137, false)))
                .extracting(TaskStatus::reason, TaskStatus::message)
                .containsExactly("Signaled", "killed by SIGKILL");
        assertThat(finalStatus(exit(143, false)).message()).isEqualTo("killed by SIGTERM");
        assertThat(finalStatus(exit(137, true)))
                .extracting(TaskStatus::reason, TaskStatus::message)
                .containsExactly("OOMKilled", "killed by the memory cgroup's OOM killer (exit code 137)");
        assertThat(finalStatus(exit(0, true)).reason())
                .as("a clean exit was no OOM kill")
                .isEqualTo("Completed");
        assertThat(finalStatus(exit(200, false)).reason())
                .as("128+72 is no signal")
                .isEqualTo("Error");
    }

    @Test
    void aTaskThatEndedWithoutDoingWhatWasAskedIsStalledWithTheReason() {
        assertThat(finalStatus(exit(3, false)).conditions()).isEqualTo(stalled("Error", "exited with code 3"));
        assertThat(finalStatus(exit(137, false)).conditions()).isEqualTo(stalled("Signaled", "killed by SIGKILL"));
        assertThat(finalStatus(exit(137, true)).conditions())
                .isEqualTo(stalled("OOMKilled", "killed by the memory cgroup's OOM killer (exit code 137)"));
        assertThat(finalStatus(exit(0, false)).conditions())
                .as("a completed task did what was asked")
                .isNull();
        assertThat(statusOf(running().exited(3, NOW, "Error", "exited with code 3"))
                        .conditions())
                .as("only the final status says Stalled: the agent never takes it back")
                .isNull();
    }

    @Test
    void aTaskKilledByTheStopItWasAskedForIsNotStalledButOneThatFailedOnTheWayIs() {
        TaskRecord stopping = running().stopping(STARTED, "SIGTERM", 5);
        assertThat(finalStatus(decide.exited(stopping, new ExitFile(143, NOW, false), true))
                        .conditions())
                .isNull();
        assertThat(finalStatus(decide.exited(stopping, new ExitFile(1, NOW, false), true))
                        .conditions())
                .isEqualTo(stalled("Error", "exited with code 1"));
    }

    @Test
    void aTaskStoppedBeforeItStartedIsCancelledNotStalled() {
        assertThat(reconcile(task(DesiredState.Stopped, null), null))
                .singleElement()
                .extracting(action -> ((WriteStatus) action).status().conditions())
                .isNull();
    }

    private static List<Condition> stalled(String reason, String message) {
        return List.of(new ConditionBuilder()
                .withType("Stalled")
                .withStatus("True")
                .withReason(reason)
                .withMessage(message)
                .withObservedGeneration(1L)
                .withLastTransitionTime("2026-12-01T10:00:00Z")
                .build());
    }

    @Test
    void anIncompleteExitFileWaitsForItsNextEvent() {
        assertThat(decide.exited(running(), new ExitFile(null, null, false), true))
                .isEmpty();
    }

    @Test
    void exitFilesOfFinishedOrUnknownTasksGo() {
        TaskRecord exited = running().exited(0, NOW, "Completed", "m");
        assertThat(decide.exited(exited.releasedNow(), null, true)).containsExactly(new TaskAction.DeleteExitFile());
        assertThat(decide.exited(exited, null, true))
                .as("still to be released: it needs no second exit")
                .isEmpty();
        assertThat(decide.exited(null, null, false)).containsExactly(new TaskAction.DeleteExitFile());
        assertThat(decide.exited(null, null, true))
                .as("a record may be on its way")
                .isEmpty();
    }

    @Test
    void anExitWhoseStatusDidNotLandIsReportedAgainOnTheNextLook() {
        TaskRecord released =
                running().exited(1, NOW, "Error", "exited with code 1").releasedNow();
        assertThat(reconcile(task(DesiredState.Running, null), released))
                .containsExactly(new ReportFinal(statusOf(released)));
        assertThat(reconcile(task(DesiredState.Running, statusOf(released)), released.reportedNow()))
                .isEmpty();
    }

    @Test
    void anExitNotYetReleasedIsReleasedOnTheNextLook() {
        TaskRecord exited = running().exited(1, NOW, "Error", "exited with code 1");
        assertThat(reconcile(task(DesiredState.Running, null), exited))
                .containsExactly(
                        new Release(), new Save(exited.releasedNow()), new ReportFinal(statusOf(exited.releasedNow())));
    }

    @Test
    void phasesFollowTheRecord() {
        TaskRecord rec = running();
        assertThat(TaskDecisions.phaseOf(creating())).isEqualTo(Phase.Pending);
        assertThat(TaskDecisions.phaseOf(creating().created(new ProcessId(1L, 1L), null)))
                .isEqualTo(Phase.Created);
        assertThat(TaskDecisions.phaseOf(rec)).isEqualTo(Phase.Running);
        assertThat(TaskDecisions.phaseOf(rec.stopping(NOW, "SIGTERM", 10))).isEqualTo(Phase.Stopped);
        assertThat(TaskDecisions.phaseOf(rec.paused())).isEqualTo(Phase.Paused);
        assertThat(TaskDecisions.phaseOf(rec.exited(0, NOW, "Completed", "m"))).isEqualTo(Phase.Stopped);
        assertThat(TaskDecisions.phaseOf(rec.exited(0, NOW, "Completed", "m").releasedNow()))
                .isEqualTo(Phase.Deleted);
    }

    // --- deletion of the Task object ---------------------------------------------------------------------------

    @Test
    void aLiveTaskIsStoppedFirst() {
        TaskRecord rec = running();
        TaskRecord stopping = rec.stopping(NOW, "SIGTERM", 2);
        assertThat(decide.remove(task(1, DesiredState.Running, "SIGTERM", 2L, null), rec, NOW))
                .containsExactly(new Save(stopping), new Signal("SIGTERM"), new KillAt(NOW.plusSeconds(2)));
    }

    @Test
    void anExitedTaskIsFinishedAndForgotten() {
        TaskRecord exited = running().exited(0, NOW, "Completed", "m");
        assertThat(decide.remove(task(DesiredState.Running, null), exited, NOW))
                .containsExactly(
                        new Release(),
                        new Save(exited.releasedNow()),
                        new ReportFinal(statusOf(exited.releasedNow())),
                        new Forget());
        assertThat(decide.remove(
                        task(DesiredState.Running, null), exited.releasedNow().reportedNow(), NOW))
                .containsExactly(new Forget());
    }

    @Test
    void aRecordWhoseTaskObjectWentWhileTheAgentWasDownIsReleasedAndForgotten() {
        assertThat(decide.orphaned()).containsExactly(new Release(), new Forget());
    }

    @Test
    void aTaskBeingCreatedIsWaitedFor() {
        assertThat(decide.remove(task(DesiredState.Running, null), creating(), NOW))
                .isEmpty();
    }

    // --- adoption by a restarted agent ---------------------------------------------------------------------------

    private Found runtimeSays(String state, boolean monitorAlive) {
        return new Found(Optional.ofNullable(state), false, monitorAlive, TASK_PROCESS, CONMON);
    }

    @Test
    void aContainerCreatedButNeverStartedIsStartedOnce() {
        TaskRecord created = creating().created(TASK_PROCESS, CONMON);
        TaskRecord started = created.started(NOW);
        assertThat(decide.adopt(creating(), runtimeSays("created", true), NOW))
                .containsExactly(
                        new Save(created), new StartCreated(), new Save(started), new WriteStatus(statusOf(started)));
        assertThat(statusOf(started).pid()).isEqualTo(4242L);
    }

    @Test
    void aRunningOrPausedContainerIsFollowedNeverStartedAgain() {
        TaskRecord rec = running();
        assertThat(decide.adopt(rec, runtimeSays("running", true), NOW))
                .containsExactly(new Save(rec), new WriteStatus(statusOf(rec)));
        assertThat(decide.adopt(rec, runtimeSays("paused", true), NOW))
                .containsExactly(new Save(rec.paused()), new WriteStatus(statusOf(rec.paused())));
        // Started, then the agent died before recording it: running since about now.
        TaskRecord found = creating().found(TaskRecord.State.RUNNING, TASK_PROCESS, CONMON, NOW);
        assertThat(decide.adopt(creating(), runtimeSays("running", true), NOW))
                .containsExactly(new Save(found), new WriteStatus(statusOf(found)));
        assertThat(found.startedAt()).isEqualTo(NOW);
    }

    @Test
    void aCreatedContainerWhoseStopWasRequestedIsNotStarted() {
        TaskRecord stopping = creating().created(TASK_PROCESS, CONMON).stopping(NOW, "SIGTERM", 2);
        assertThat(decide.adopt(stopping, runtimeSays("created", true), NOW))
                .containsExactly(
                        new KillAt(NOW.plusSeconds(2)), new Save(stopping), new WriteStatus(statusOf(stopping)));
    }

    @Test
    void aStopUnderWayHasItsKillArmedAgainAndItsSignalSentAgain() {
        TaskRecord stopping = running().stopping(NOW, "SIGTERM", 2);
        TaskRecord found = stopping.found(TaskRecord.State.RUNNING, TASK_PROCESS, CONMON, NOW);
        assertThat(decide.adopt(stopping, runtimeSays("running", true), NOW))
                .as("the agent may have died between recording the stop and sending its signal")
                .containsExactly(
                        new KillAt(NOW.plusSeconds(2)),
                        new Save(found),
                        new Signal("SIGTERM"),
                        new WriteStatus(statusOf(found)));
        TaskRecord paused = running().paused().stopping(NOW, "SIGINT", 2);
        TaskRecord pausedFound = paused.found(TaskRecord.State.PAUSED, TASK_PROCESS, CONMON, NOW);
        assertThat(decide.adopt(paused, runtimeSays("paused", true), NOW))
                .containsExactly(
                        new KillAt(NOW.plusSeconds(2)),
                        new Save(pausedFound),
                        new Resume(),
                        new Save(pausedFound.resumed()),
                        new Signal("SIGINT"),
                        new WriteStatus(statusOf(pausedFound.resumed())));
        assertThat(decide.adopt(stopping, runtimeSays("stopped", true), NOW))
                .containsExactly(new KillAt(NOW.plusSeconds(2)));
    }

    @Test
    void aCreateTheAgentDiedInIsStartFailedAfterItsMonitorGaveUp() {
        TaskRecord failed = creating()
                .exited(null, NOW, "StartFailed", "the agent restarted while creating the task; it was not started");
        assertThat(decide.adopt(creating(), runtimeSays(null, true), NOW))
                .containsExactly(
                        new AwaitMonitorExit(),
                        new Save(failed),
                        new Release(),
                        new Save(failed.releasedNow()),
                        new ReportFinal(statusOf(failed.releasedNow())));
        assertThat(decide.adopt(creating(), runtimeSays(null, false), NOW)).startsWith(new Save(failed));
    }

    @Test
    void aTaskWhoseExitStatusWasLostEndsWithError() {
        TaskRecord rec = running();
        TaskRecord lost = rec.exited(
                null, NOW, "Error", "the process exited while the agent was down and its exit status was lost");
        assertThat(decide.adopt(rec, runtimeSays("stopped", false), NOW)).startsWith(new Save(lost), new Release());
        TaskRecord gone =
                rec.exited(null, NOW, "Error", "the runtime has no state of this task and its exit status was lost");
        assertThat(decide.adopt(rec, runtimeSays(null, false), NOW)).startsWith(new Save(gone), new Release());
    }

    @Test
    void anExitWhileTheAgentWasAwayIsLeftToTheExitWatcher() {
        assertThat(decide.adopt(running(), new Found(Optional.empty(), true, false, null, null), NOW))
                .isEmpty();
    }

    @Test
    void anExitedTaskIsFinished() {
        TaskRecord exited = running().exited(0, NOW, "Completed", "m").releasedNow();
        assertThat(decide.adopt(exited, null, NOW)).containsExactly(new ReportFinal(statusOf(exited)));
        assertThat(decide.adopt(exited.reportedNow(), null, NOW)).isEmpty();
    }

    // --- a status write that did not land ----------------------------------------------------------------------

    @Test
    void anUnreportedExitIsReportedFromTheRecordAndReleasedFirstIfItWasNot() {
        TaskRecord exited = running().exited(7, NOW, "Error", "exited with code 7");
        assertThat(decide.unreported(exited))
                .containsExactly(
                        new Release(), new Save(exited.releasedNow()), new ReportFinal(statusOf(exited.releasedNow())));
        assertThat(decide.unreported(exited.releasedNow()))
                .containsExactly(new ReportFinal(statusOf(exited.releasedNow())));
        assertThat(decide.unreported(exited.releasedNow().reportedNow())).isEmpty();
    }

    @Test
    void aLiveTaskHasWhatItsRecordSaysWrittenAndOneBeingCreatedWaitsForItsCreate() {
        TaskRecord stopping = running().stopping(NOW, "SIGTERM", 10);
        assertThat(decide.unreported(running())).containsExactly(new WriteStatus(statusOf(running())));
        assertThat(decide.unreported(running().paused()))
                .containsExactly(new WriteStatus(statusOf(running().paused())));
        assertThat(decide.unreported(stopping)).containsExactly(new WriteStatus(statusOf(stopping)));
        assertThat(statusOf(stopping).phase()).isEqualTo(Phase.Stopped);
        assertThat(decide.unreported(creating())).isEmpty();
    }

    // --- a monitor that died ------------------------------------------------------------------------------------

    @Test
    void aTaskWhoseConmonDiedIsKilledAndEndsMonitorLostWith137AsContainerdDoesForADeadShim() {
        TaskRecord killed = running()
                .exited(
                        137,
                        NOW,
                        "MonitorLost",
                        "conmon, the task's monitor, died; the task was killed (SIGKILL), as containerd kills a task"
                                + " whose shim died");
        List<TaskAction> expected = List.of(
                new Save(killed),
                new Release(), // the runtime's forced delete: the SIGKILL
                new Save(killed.releasedNow()),
                new ReportFinal(statusOf(killed.releasedNow())));
        assertThat(decide.monitorChecked(running(), runtimeSays("running", false), NOW))
                .isEqualTo(expected);
        assertThat(decide.monitorChecked(running().paused(), runtimeSays("paused", false), NOW))
                .first()
                .isEqualTo(new Save(running().paused().exited(137, NOW, "MonitorLost", killed.message())));
        TaskStatus status = statusOf(killed.releasedNow());
        assertThat(status.phase()).isEqualTo(Phase.Deleted);
        assertThat(status.exitCode()).isEqualTo(137);
        assertThat(status.conditions()).extracting(Condition::getType).containsExactly(Conditions.STALLED);
        // A restarted agent finds the same: the task is not followed without its monitor.
        assertThat(decide.adopt(running(), runtimeSays("running", false), NOW)).isEqualTo(expected);
    }

    /**
     * The agent died during the create and conmon with it (its start handshake broke): the container the runtime
     * holds as created never ran its command. It is not started without its monitor; it is removed (the forced
     * delete) and ends as a start failure, without an exit code, whether the restarted agent or a monitor check
     * finds it.
     */
    @Test
    void aCreatedTaskWhoseConmonDiedIsNotStartedAndEndsAsTheStartFailureItWas() {
        TaskRecord created = creating().created(TASK_PROCESS, CONMON);
        TaskRecord failed = created.exited(
                null,
                NOW,
                "StartFailed",
                "conmon, the task's monitor, died before the task was started (the agent restarted while creating"
                        + " it); it was not started");
        List<TaskAction> expected = List.of(
                new Save(failed),
                new Release(),
                new Save(failed.releasedNow()),
                new ReportFinal(statusOf(failed.releasedNow())));

        assertThat(decide.adopt(created, runtimeSays("created", false), NOW)).isEqualTo(expected);
        assertThat(decide.monitorChecked(created, runtimeSays("created", false), NOW))
                .isEqualTo(expected);
        TaskStatus status = statusOf(failed.releasedNow());
        assertThat(status.phase()).isEqualTo(Phase.Deleted);
        assertThat(status.exitCode()).isNull();
        assertThat(status.reason()).isEqualTo("StartFailed");
    }

    @Test
    void aTaskThatEndedWithItsConmonHasItsExitStatusLost() {
        for (String state : new String[] {"stopped", null}) {
            assertThat(decide.monitorChecked(running(), runtimeSays(state, false), NOW))
                    .first()
                    .isEqualTo(new Save(running()
                            .exited(
                                    null,
                                    NOW,
                                    "MonitorLost",
                                    "conmon, the task's monitor, died; the task had exited and its exit status was"
                                            + " lost")));
        }
    }

    @Test
    void aLiveConmonAnExitFileOrACreateUnderWayLeaveTheTaskAlone() {
        assertThat(decide.monitorChecked(running(), runtimeSays("running", true), NOW))
                .isEmpty();
        assertThat(decide.monitorChecked(running(), new Found(Optional.empty(), true, false, null, null), NOW))
                .isEmpty();
        assertThat(decide.monitorChecked(creating(), runtimeSays("created", false), NOW))
                .isEmpty();
        TaskRecord exited = running().exited(0, NOW, "Completed", "m");
        assertThat(decide.monitorChecked(exited, runtimeSays(null, false), NOW)).isEmpty();
    }
}
