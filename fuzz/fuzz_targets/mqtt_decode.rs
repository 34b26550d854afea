//! Feeds arbitrary bytes to the MQTT decoder for every protocol version and a small and an
//! unlimited maximum packet size. The decoder must never panic, `Ok(None)` must leave the buffer
//! untouched, and whatever decodes must encode again and decode to the same packet.
#![no_main]

use bytes::BytesMut;
use ferromq_mqtt::{decode, decode_connect_version, encode, ProtocolVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_connect_version(data);
    for version in [ProtocolVersion::V31, ProtocolVersion::V311, ProtocolVersion::V5] {
        for max in [64, usize::MAX] {
            let mut buf = BytesMut::from(data);
            loop {
                let before = buf.len();
                match decode(&mut buf, version, max) {
                    Ok(Some(packet)) => {
                        let mut out = BytesMut::new();
                        if encode(&packet, version, &mut out).is_ok() {
                            let again = decode(&mut out, version, usize::MAX);
                            assert!(matches!(again, Ok(Some(ref p)) if *p == packet));
                        }
                    }
                    Ok(None) => {
                        assert_eq!(buf.len(), before);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }
});
