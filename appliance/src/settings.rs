//! `appliance.yaml`: the appliance's own configuration.
