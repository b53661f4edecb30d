package dev.stevedore.operator;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.informers.cache.BasicItemStore;
import io.fabric8.kubernetes.client.informers.cache.Cache;

/**
 * An informer cache without managedFields. The operator never reads them (it applies fresh objects), yet at
 * 10,000 Containers they were most of its heap: hundreds of thousands of small maps, per cached copy.
 */
public class LeanItemStore<T extends HasMetadata> extends BasicItemStore<T> {
    public LeanItemStore() {
        super(Cache::metaNamespaceKeyFunc);
    }

    @Override
    public T put(String key, T obj) {
        obj.getMetadata().setManagedFields(null);
        return super.put(key, obj);
    }
}
