package dev.stevedore.agent.tasks;

import dev.stevedore.api.v1alpha1.Task;

/** Which Task object a task is: its status goes to the object of this name that has this UID. */
record TaskRef(String namespace, String name, String uid) {

    static TaskRef of(Task task) {
        return new TaskRef(
                task.getMetadata().getNamespace(),
                task.getMetadata().getName(),
                task.getMetadata().getUid());
    }

    static TaskRef of(TaskRecord rec) {
        return new TaskRef(rec.namespace(), rec.name(), rec.uid());
    }
}
