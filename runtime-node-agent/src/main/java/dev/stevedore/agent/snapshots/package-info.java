/**
 * Snapshots: image layers unpacked into root filesystems, in containerd's model.
 *
 * <p>On disk, {@code <root>/snapshots/<overlayfs|native>/} holds one directory per snapshot, named by a short
 * numeric id, with its {@code info.json} (name, kind, parent) inside; {@code tmp/} holds snapshots being built or
 * removed and is emptied at startup. Committed snapshots keep their tree in {@code <id>/fs}; active overlay
 * snapshots have {@code <id>/upper} and {@code <id>/work}, active native ones a full copy in {@code <id>/fs}.
 *
 * <p>Layers are hostile and the agent is root: {@link dev.stevedore.agent.snapshots.LayerApplier} resolves every
 * entry, symlink and hardlink target through {@code RootResolver} (lstat per component, symlinks expanded by hand
 * with the rootfs as {@code /}, as containerd's fs.RootPath does, also through the layers below an overlay layer;
 * the last component replaced, never followed), and deletions go through openat/O_NOFOLLOW ({@code fs.SafeDelete}).
 * A layer is decompressed once, and its diff ID checked while it is applied. Names are UTF-8 bytes whatever the
 * JVM's locale.
 */
package dev.stevedore.agent.snapshots;
