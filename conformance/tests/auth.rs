//! Access control with real clients: logins (MQTT CONNACK codes, AMQP 403), RabbitMQ-style
//! vhost permissions on AMQP methods (lapin), and Mosquitto-style topic ACLs (rumqttc).

#[path = "auth/auth_01_login.rs"]
mod auth_01_login;
#[path = "auth/auth_02_permissions.rs"]
mod auth_02_permissions;
#[path = "auth/auth_03_acl.rs"]
mod auth_03_acl;
#[path = "auth/auth_04_vhosts.rs"]
mod auth_04_vhosts;
