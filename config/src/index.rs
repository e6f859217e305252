//! Lookups the compile step makes per route, per parentRef and per backendRef, built once
//! per compile so that compiling is linear in the number of objects (a scan of every
//! Service or EndpointSlice per backendRef made 20,000 routes take seconds).
//!
//! Only lookups by key: nothing iterates these maps, so their order cannot leak into the
//! output, and the compile step stays deterministic.

use std::collections::HashMap;

use crate::load::ObjectSet;
use crate::model::{EndpointSlice, Namespace, ReferenceGrant, Service, SERVICE_NAME_LABEL};

/// The objects of a set, by the keys the compile step looks them up with.
pub(crate) struct Index<'a> {
    /// Services by namespace, then name; names are unique per kind (checked at load).
    services: HashMap<&'a str, HashMap<&'a str, &'a Service>>,
    /// EndpointSlices by namespace, then `kubernetes.io/service-name`.
    slices: HashMap<&'a str, HashMap<&'a str, Vec<&'a EndpointSlice>>>,
    /// ReferenceGrants by namespace.
    grants: HashMap<&'a str, Vec<&'a ReferenceGrant>>,
    /// Namespaces by name.
    namespaces: HashMap<&'a str, &'a Namespace>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(set: &'a ObjectSet) -> Self {
        let mut services: HashMap<_, HashMap<_, _>> = HashMap::new();
        for s in &set.services {
            services
                .entry(s.meta.namespace.as_str())
                .or_default()
                .insert(s.meta.name.as_str(), s);
        }
        let mut slices: HashMap<_, HashMap<_, Vec<_>>> = HashMap::new();
        for s in &set.endpoint_slices {
            if let Some(service) = s.meta.labels.get(SERVICE_NAME_LABEL) {
                slices
                    .entry(s.meta.namespace.as_str())
                    .or_default()
                    .entry(service.as_str())
                    .or_default()
                    .push(s);
            }
        }
        let mut grants: HashMap<_, Vec<_>> = HashMap::new();
        for g in &set.reference_grants {
            grants.entry(g.meta.namespace.as_str()).or_default().push(g);
        }
        let namespaces = set
            .namespaces
            .iter()
            .map(|n| (n.meta.name.as_str(), n))
            .collect();
        Index {
            services,
            slices,
            grants,
            namespaces,
        }
    }

    /// The Service `namespace/name`.
    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<&'a Service> {
        self.services.get(namespace)?.get(name).copied()
    }

    /// The EndpointSlices of Service `namespace/name`, in input order.
    pub(crate) fn slices(&self, namespace: &str, service: &str) -> &[&'a EndpointSlice] {
        self.slices
            .get(namespace)
            .and_then(|by_service| by_service.get(service))
            .map_or(&[], Vec::as_slice)
    }

    /// The ReferenceGrants in `namespace`, in input order.
    pub(crate) fn grants(&self, namespace: &str) -> &[&'a ReferenceGrant] {
        self.grants.get(namespace).map_or(&[], Vec::as_slice)
    }

    /// The Namespace object named `name`, if the set has one.
    pub(crate) fn namespace(&self, name: &str) -> Option<&'a Namespace> {
        self.namespaces.get(name).copied()
    }
}
