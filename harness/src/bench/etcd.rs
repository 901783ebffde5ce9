//! Just enough of etcd's v3 gRPC API (`etcdserverpb.KV` Put and Range, and
//! `Maintenance` Status to find the leader) to load an etcd cluster the same
//! way `harness bench` loads raftkv. Field
//! numbers follow etcd's `rpc.proto`; fields not listed are left at their
//! defaults, so a Range is linearizable (serializable = false).

use std::time::Duration;

use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResponse {
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseHeader {
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(uint64, tag = "4")]
    pub leader: u64,
}

/// A connection to one etcd member. Any member serves both calls (followers
/// forward to the leader); [`find_leader`] picks the leader's address.
#[derive(Clone)]
pub struct EtcdKv {
    grpc: Grpc<Channel>,
    timeout: Duration,
}

impl EtcdKv {
    pub fn connect_lazy(addr: &str, timeout: Duration) -> Result<EtcdKv, String> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("bad etcd address {addr:?}: {e}"))?
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(EtcdKv {
            grpc: Grpc::new(channel),
            timeout,
        })
    }

    async fn call<Req, Resp>(&mut self, path: &'static str, request: Req) -> Result<Resp, String>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|e| format!("etcd not ready: {e}"))?;
        let mut request = tonic::Request::new(request);
        request.set_timeout(self.timeout);
        let call = self.grpc.unary(
            request,
            PathAndQuery::from_static(path),
            tonic_prost::ProstCodec::<Req, Resp>::default(),
        );
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
            Err(_) => Err("timeout".into()),
        }
    }

    pub async fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.call::<_, PutResponse>("/etcdserverpb.KV/Put", PutRequest { key, value })
            .await
            .map(|_| ())
    }

    /// This member's id and the leader's id (0 while there is none).
    pub async fn status(&mut self) -> Result<(u64, u64), String> {
        let response: StatusResponse = self
            .call("/etcdserverpb.Maintenance/Status", StatusRequest {})
            .await?;
        let member = response.header.map_or(0, |h| h.member_id);
        Ok((member, response.leader))
    }

    pub async fn get(&mut self, key: Vec<u8>) -> Result<Option<Vec<u8>>, String> {
        let response: RangeResponse = self
            .call("/etcdserverpb.KV/Range", RangeRequest { key })
            .await?;
        Ok(response.kvs.into_iter().next().map(|kv| kv.value))
    }
}

/// The address, among `addrs`, of the member that leads.
pub async fn find_leader(addrs: &[String], timeout: Duration) -> Result<String, String> {
    let mut errors = Vec::new();
    for addr in addrs {
        match EtcdKv::connect_lazy(addr, timeout)?.status().await {
            Ok((member, leader)) if member != 0 && member == leader => return Ok(addr.clone()),
            Ok(_) => {}
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Err(format!(
        "no etcd member among {} says it leads{}",
        addrs.join(","),
        if errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", errors.join("; "))
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn messages_use_etcd_field_numbers() {
        let put = PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        };
        // field 1 (key) and field 2 (value), both length-delimited.
        assert_eq!(put.encode_to_vec(), vec![0x0a, 1, b'k', 0x12, 1, b'v']);
        // A RangeResponse with one kv: kvs is field 2, value is field 5.
        let bytes = [0x12, 6, 0x0a, 1, b'k', 0x2a, 1, b'v'];
        let response = RangeResponse::decode(&bytes[..]).unwrap();
        assert_eq!(response.kvs[0].value, b"v");
        // A StatusResponse: header (field 1) with member_id (field 2) = 7,
        // leader (field 4) = 7.
        let bytes = [0x0a, 2, 0x10, 7, 0x20, 7];
        let status = StatusResponse::decode(&bytes[..]).unwrap();
        assert_eq!((status.header.unwrap().member_id, status.leader), (7, 7));
    }
}
