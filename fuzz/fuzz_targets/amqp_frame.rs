//! Feeds arbitrary bytes to the AMQP frame decoder (which also parses method and content-header
//! payloads, field tables included) with the pre-tune limit, a typical negotiated frame_max and
//! no limit. It must never panic; `Ok(None)` must leave the buffer untouched; errors carry a
//! connection-level reply code; whatever decodes must encode and decode to the same frame.
#![no_main]

use bytes::BytesMut;
use ferromq_amqp::{decode_frame, encode_frame, FRAME_MIN_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for frame_max in [FRAME_MIN_SIZE, 131_072, 0] {
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.len();
            match decode_frame(&mut buf, frame_max) {
                Ok(Some(frame)) => {
                    let mut out = BytesMut::new();
                    if encode_frame(&frame, &mut out).is_ok() {
                        let again = decode_frame(&mut out, 0);
                        assert!(matches!(again, Ok(Some(ref f)) if *f == frame));
                    }
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before);
                    break;
                }
                Err(e) => {
                    assert!(matches!(e.reply_code(), 501..=503));
                    break;
                }
            }
        }
    }
});
