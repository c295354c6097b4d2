//! The Python `kubernetes` client (no Content-Type on POST bodies, no apiVersion/kind unless set).

use crate::harness::Server;

#[test]
fn python_client_does_the_same_crud() {
    let server = Server::start();
    let token = server.admin_token();
    let out = server.python("crud.py", &token, &[]);
    assert_eq!(out.ok(), "ok\n", "{}", out.stderr);
}
