//! Rules about factors shared by the login, self-service and admin layers.

pub(crate) mod requirement;
pub(crate) mod touch;
