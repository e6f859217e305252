//! The set of objects a load produces: every kind udplb reads, kept in input order, and
//! merged only when no two objects of one kind share a namespace and name.

use std::collections::HashMap;

use crate::model::{
    CustomResourceDefinition, EndpointSlice, Gateway, GatewayClass, Meta, Namespace,
    ReferenceGrant, Service, UdpRoute,
};
use crate::policy::model::{
    UdpBackendPolicy, UdpTrafficPolicy, BACKEND_POLICY_KIND, TRAFFIC_POLICY_KIND,
};
use crate::validate::{Location, ObjectId, Problem, ValidationError};

/// Every object udplb understands, as read (validated, not yet interpreted).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectSet {
    /// GatewayClasses.
    pub gateway_classes: Vec<GatewayClass>,
    /// Gateways.
    pub gateways: Vec<Gateway>,
    /// UDPRoutes (v1 and v1alpha2).
    pub udp_routes: Vec<UdpRoute>,
    /// ReferenceGrants.
    pub reference_grants: Vec<ReferenceGrant>,
    /// Services.
    pub services: Vec<Service>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// The Gateway API's CustomResourceDefinitions (their bundle version decides the
    /// GatewayClass `SupportedVersion` condition); other CRDs are skipped.
    pub custom_resource_definitions: Vec<CustomResourceDefinition>,
    /// `udplb.io/v1alpha1` `UDPBackendPolicy` objects.
    pub udp_backend_policies: Vec<UdpBackendPolicy>,
    /// `udplb.io/v1alpha1` `UDPTrafficPolicy` objects.
    pub udp_traffic_policies: Vec<UdpTrafficPolicy>,
}

impl ObjectSet {
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.gateway_classes.len()
            + self.gateways.len()
            + self.udp_routes.len()
            + self.reference_grants.len()
            + self.services.len()
            + self.endpoint_slices.len()
            + self.namespaces.len()
            + self.custom_resource_definitions.len()
            + self.udp_backend_policies.len()
            + self.udp_traffic_policies.len()
    }

    /// True when the set holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds every object of `other`. Two objects of one kind with the same namespace and
    /// name are an error (as in Kubernetes, `v1` and `v1alpha2` UDPRoutes are one kind);
    /// on error `self` is left unchanged.
    ///
    /// # Errors
    /// A [`ValidationError`] naming each duplicate and where it was first defined.
    pub fn merge(&mut self, other: ObjectSet) -> Result<(), ValidationError> {
        let problems = duplicates(self.metas().chain(other.metas()));
        if !problems.is_empty() {
            return Err(ValidationError { problems });
        }
        self.gateway_classes.extend(other.gateway_classes);
        self.gateways.extend(other.gateways);
        self.udp_routes.extend(other.udp_routes);
        self.reference_grants.extend(other.reference_grants);
        self.services.extend(other.services);
        self.endpoint_slices.extend(other.endpoint_slices);
        self.namespaces.extend(other.namespaces);
        self.custom_resource_definitions
            .extend(other.custom_resource_definitions);
        self.udp_backend_policies.extend(other.udp_backend_policies);
        self.udp_traffic_policies.extend(other.udp_traffic_policies);
        Ok(())
    }

    /// Moves every object of `other` to the end of `self`.
    pub(super) fn append(&mut self, other: &mut ObjectSet) {
        self.gateway_classes.append(&mut other.gateway_classes);
        self.gateways.append(&mut other.gateways);
        self.udp_routes.append(&mut other.udp_routes);
        self.reference_grants.append(&mut other.reference_grants);
        self.services.append(&mut other.services);
        self.endpoint_slices.append(&mut other.endpoint_slices);
        self.namespaces.append(&mut other.namespaces);
        self.custom_resource_definitions
            .append(&mut other.custom_resource_definitions);
        self.udp_backend_policies
            .append(&mut other.udp_backend_policies);
        self.udp_traffic_policies
            .append(&mut other.udp_traffic_policies);
    }

    /// Every object's kind and metadata, kind by kind, each kind in input order.
    pub(super) fn metas(&self) -> impl Iterator<Item = (&'static str, &Meta)> {
        fn of<'a, T>(
            kind: &'static str,
            objects: &'a [T],
            meta: fn(&T) -> &Meta,
        ) -> impl Iterator<Item = (&'static str, &'a Meta)> {
            objects.iter().map(move |o| (kind, meta(o)))
        }
        of("GatewayClass", &self.gateway_classes, |o| &o.meta)
            .chain(of("Gateway", &self.gateways, |o| &o.meta))
            .chain(of("UDPRoute", &self.udp_routes, |o| &o.meta))
            .chain(of("ReferenceGrant", &self.reference_grants, |o| &o.meta))
            .chain(of("Service", &self.services, |o| &o.meta))
            .chain(of("EndpointSlice", &self.endpoint_slices, |o| &o.meta))
            .chain(of("Namespace", &self.namespaces, |o| &o.meta))
            .chain(of(
                "CustomResourceDefinition",
                &self.custom_resource_definitions,
                |o| &o.meta,
            ))
            .chain(of(BACKEND_POLICY_KIND, &self.udp_backend_policies, |o| {
                &o.meta
            }))
            .chain(of(TRAFFIC_POLICY_KIND, &self.udp_traffic_policies, |o| {
                &o.meta
            }))
    }
}

/// "defined twice" for every object whose kind, namespace and name came before.
pub(super) fn duplicates<'a>(
    metas: impl Iterator<Item = (&'static str, &'a Meta)>,
) -> Vec<Problem> {
    let mut first: HashMap<(&str, &str, &str), &Location> = HashMap::new();
    let mut problems = Vec::new();
    for (kind, meta) in metas {
        let key = (kind, meta.namespace.as_str(), meta.name.as_str());
        match first.get(&key) {
            Some(loc) => problems.push(Problem {
                location: meta.source.clone(),
                object: Some(object_id(kind, meta)),
                field: String::new(),
                message: format!("defined twice; first at {loc}"),
            }),
            None => {
                first.insert(key, &meta.source);
            }
        }
    }
    problems
}

fn object_id(kind: &str, meta: &Meta) -> ObjectId {
    ObjectId {
        kind: kind.into(),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
    }
}
