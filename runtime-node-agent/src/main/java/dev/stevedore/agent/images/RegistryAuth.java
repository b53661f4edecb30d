package dev.stevedore.agent.images;

/** Credentials for one registry, as a kubernetes.io/dockerconfigjson Secret gives them. */
public record RegistryAuth(String username, String password) {
    @Override
    public String toString() {
        return "RegistryAuth[" + username + ", ****]";
    }
}
