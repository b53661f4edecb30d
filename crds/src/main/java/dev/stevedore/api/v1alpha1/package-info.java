/**
 * The {@code stevedore.dev/v1alpha1} API. A {@link dev.stevedore.api.v1alpha1.Container} is pure metadata (image,
 * runtime, spec, rootfs snapshot, labels); a {@link dev.stevedore.api.v1alpha1.Task} is its running process; a
 * {@link dev.stevedore.api.v1alpha1.RuntimeNode} is one node agent. Validation lives in the schema and its CEL rules,
 * so the API server refuses bad objects before any controller sees them.
 */
package dev.stevedore.api.v1alpha1;
