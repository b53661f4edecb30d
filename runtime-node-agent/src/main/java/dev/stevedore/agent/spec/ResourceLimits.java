package dev.stevedore.agent.spec;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import java.math.BigDecimal;
import java.math.RoundingMode;

/** A Container's resources as cgroup limits in {@code linux.resources}, the way the kubelet maps a Pod's limits. */
final class ResourceLimits {
    /** The CFS period the kubelet and Docker use: 100ms. */
    static final long CPU_PERIOD = 100_000;
    /** The kernel refuses a quota below 1ms; the kubelet raises tiny limits to it too. */
    static final long MIN_CPU_QUOTA = 1_000;

    private ResourceLimits() {}

    static void apply(ContainerSpec.Resources resources, ObjectNode linuxResources) throws SpecRejectedException {
        if (resources == null) {
            return;
        }
        if (resources.memory() != null) {
            long bytes = wholeUnits(amount(resources.memory(), true), "memory", resources.memory());
            ObjectNode memory = linuxResources.putObject("memory");
            memory.put("limit", bytes);
            // memory+swap equal to memory: no swap beyond the limit, so the limit is what the task gets.
            memory.put("swap", bytes);
        }
        if (resources.cpu() != null) {
            BigDecimal cores = amount(resources.cpu(), false);
            long quota = wholeUnits(cores.multiply(BigDecimal.valueOf(CPU_PERIOD)), "cpu", resources.cpu());
            ObjectNode cpu = linuxResources.putObject("cpu");
            cpu.put("period", CPU_PERIOD);
            cpu.put("quota", Math.max(MIN_CPU_QUOTA, quota));
        }
        if (resources.pids() != null) {
            if (resources.pids() < 1) {
                throw new SpecRejectedException("resources.pids must be at least 1, not " + resources.pids());
            }
            linuxResources.putObject("pids").put("limit", resources.pids());
        }
    }

    private static BigDecimal amount(Quantity quantity, boolean bytes) throws SpecRejectedException {
        try {
            return bytes ? Quantity.getAmountInBytes(quantity) : quantity.getNumericalAmount();
        } catch (RuntimeException e) { // ArithmeticException, NumberFormatException, IllegalArgumentException
            throw new SpecRejectedException("\"" + quantity + "\" is not a quantity");
        }
    }

    /** Rounded up, as Kubernetes rounds a quantity to whole units: a limit never ends up below what was asked. */
    private static long wholeUnits(BigDecimal value, String field, Quantity quantity) throws SpecRejectedException {
        if (value.signum() <= 0) {
            throw new SpecRejectedException("resources." + field + " must be positive, not " + quantity);
        }
        try {
            return value.setScale(0, RoundingMode.CEILING).longValueExact();
        } catch (ArithmeticException e) {
            throw new SpecRejectedException("resources." + field + " " + quantity + " is too large");
        }
    }
}
