//! What a hostile or broken peer can send: frames over frame-max (rejected from the 7-byte
//! header), table nesting bombs, forged lengths, bad frame ends, unknown types and ids,
//! truncated and over-long methods. Each must give the right `DecodeError` and reply code, never
//! a panic, a stack overflow or an allocation sized by the peer.

mod common;

use bytes::BytesMut;
use common::*;
use ferromq_amqp::*;

/// A method frame on channel 1 around `payload` (class/method ids included).
fn method_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![1, 0, 1];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f.push(0xCE);
    f
}

fn syntax(class_id: u16, method_id: u16, kind: SyntaxError) -> DecodeError {
    DecodeError::Syntax {
        context: SyntaxContext::Method(MethodId {
            class_id,
            method_id,
        }),
        kind,
    }
}

#[test]
fn frame_over_frame_max_fails_from_the_header_alone() {
    // A body frame announcing 200,000 bytes under frame_max 131,072: only 7 bytes sent.
    let mut buf = BytesMut::from(&hex("03 0001 00030d40")[..]);
    let err = decode_frame(&mut buf, 131_072).unwrap_err();
    assert_eq!(
        err,
        DecodeError::FrameTooLarge {
            size: 200_008,
            max: 131_072
        }
    );
    assert_eq!(err.reply_code(), 501);
    assert_eq!(
        err.reply_text(),
        "FRAME_ERROR - frame of 200008 bytes exceeds frame_max 131072"
    );
    // Fewer than 7 bytes cannot say anything yet.
    let mut buf = BytesMut::from(&hex("03 0001 00030d")[..]);
    assert_eq!(decode_frame(&mut buf, 131_072), Ok(None));
}

#[test]
fn frame_max_counts_header_and_frame_end() {
    // A 4,088-byte body is exactly a 4,096-byte frame.
    let mut frame = hex("03 0001 00000ff8");
    frame.extend_from_slice(&[0xAB; 4088]);
    frame.push(0xCE);
    let mut buf = BytesMut::from(&frame[..]);
    let Some(Frame::Body(_, body)) = decode_frame(&mut buf, FRAME_MIN_SIZE).unwrap() else {
        panic!("expected a body frame");
    };
    assert_eq!(body.len(), 4088);
    let mut buf = BytesMut::from(&frame[..]);
    assert!(matches!(
        decode_frame(&mut buf, FRAME_MIN_SIZE - 1),
        Err(DecodeError::FrameTooLarge { size: 4096, .. })
    ));
    // frame_max 0 is "no limit", as in connection.tune.
    let mut buf = BytesMut::from(&frame[..]);
    assert!(decode_frame(&mut buf, 0).unwrap().is_some());
}

#[test]
fn frame_level_errors_are_501() {
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (
            hex("08 0000 00000000 00"),
            DecodeError::BadFrameEnd { found: 0 },
        ),
        (
            hex("01 0001 00000004 003c 0050 ff"),
            DecodeError::BadFrameEnd { found: 0xff },
        ),
        // A second protocol header mid-stream: type 'A'.
        (
            PROTOCOL_HEADER.to_vec(),
            DecodeError::UnknownFrameType(b'A'),
        ),
        // Heartbeat type 4 of old drafts, and 0.
        (hex("04 0000 00000000 ce"), DecodeError::UnknownFrameType(4)),
        (hex("00"), DecodeError::UnknownFrameType(0)),
        (
            hex("08 0000 00000001 00 ce"),
            DecodeError::MalformedFrame("heartbeat frame with a payload"),
        ),
        (
            hex("01 0001 00000003 003c 00 ce"),
            DecodeError::MalformedFrame("method frame shorter than its class and method ids"),
        ),
        (
            hex("02 0001 0000000d 003c 0000 0000000000000000 00 ce"),
            DecodeError::MalformedFrame("content header shorter than its fixed fields"),
        ),
    ];
    for (bytes, want) in cases {
        let got = decode_err(&bytes);
        assert_eq!(got, want, "{bytes:02x?}");
        assert_eq!(got.reply_code(), reply_code::FRAME_ERROR);
        assert_eq!(got.failing_method(), None);
    }
}

#[test]
fn unknown_class_and_method_are_503() {
    let e = decode_err(&method_frame(&hex("003c 00c8")));
    assert_eq!(
        e,
        DecodeError::UnknownMethod(MethodId {
            class_id: 60,
            method_id: 200
        })
    );
    assert_eq!(e.reply_code(), reply_code::COMMAND_INVALID);
    assert_eq!(
        e.reply_text(),
        "COMMAND_INVALID - unknown method 60/200 in class basic"
    );
    let e = decode_err(&method_frame(&hex("0064 000a 00")));
    let id = MethodId {
        class_id: 100,
        method_id: 10,
    };
    assert_eq!(e, DecodeError::UnknownClass(id));
    assert_eq!(e.reply_code(), 503);
    // connection.close names the failing method in full.
    assert_eq!(e.failing_method(), Some(id));
    // exchange.unbind-ok is 51; 41 does not exist.
    assert!(matches!(
        decode_err(&method_frame(&hex("0028 0029"))),
        DecodeError::UnknownMethod(_)
    ));
}

#[test]
fn truncated_and_overlong_methods_are_502() {
    // basic.publish without its bit octet.
    let e = decode_err(&method_frame(&hex("003c 0028 0000 00 01 61")));
    assert_eq!(e, syntax(60, 40, SyntaxError::Truncated));
    assert_eq!(e.reply_code(), reply_code::SYNTAX_ERROR);
    assert_eq!(
        e.reply_text(),
        "SYNTAX_ERROR - basic.publish: field runs past the end of its frame or table"
    );
    assert_eq!(
        e.failing_method(),
        Some(MethodId {
            class_id: 60,
            method_id: 40
        })
    );
    // basic.ack with an extra byte.
    assert_eq!(
        decode_err(&method_frame(&hex("003c 0050 0000000000000001 00 00"))),
        syntax(60, 80, SyntaxError::TrailingBytes)
    );
    // A short string announcing more bytes than the frame holds.
    assert_eq!(
        decode_err(&method_frame(&hex("003c 0015 09 6162"))),
        syntax(60, 21, SyntaxError::Truncated)
    );
    // Empty methods must be empty.
    assert_eq!(
        decode_err(&method_frame(&hex("005a 000a 00"))),
        syntax(90, 10, SyntaxError::TrailingBytes)
    );
}

#[test]
fn forged_lengths_fail_before_allocating() {
    // connection.secure with a 4 GiB challenge in a 12-byte frame.
    assert_eq!(
        decode_err(&method_frame(&hex("000a 0014 ffffffff 00"))),
        syntax(10, 20, SyntaxError::Truncated)
    );
    // queue.declare whose arguments table claims 4 GiB.
    assert_eq!(
        decode_err(&method_frame(&hex("0032 000a 0000 01 71 00 ffffffff"))),
        syntax(50, 10, SyntaxError::Truncated)
    );
    // A nested array claiming more than its table holds.
    assert_eq!(
        decode_err(&method_frame(&hex(
            "0032 000a 0000 01 71 00 00000008 01 61 41 7fffffff 56"
        ))),
        syntax(50, 10, SyntaxError::Truncated)
    );
    // A value running past the end of its table (the frame has more bytes after it).
    assert_eq!(
        decode_err(&method_frame(&hex(
            "0032 000a 0000 01 71 00 00000004 01 61 49 00 00000000"
        ))),
        syntax(50, 10, SyntaxError::Truncated)
    );
}

#[test]
fn unknown_field_type() {
    let e = decode_err(&method_frame(&hex(
        "0032 000a 0000 01 71 00 00000004 01 61 5a 00",
    )));
    assert_eq!(e, syntax(50, 10, SyntaxError::UnknownFieldType(b'Z')));
    assert_eq!(e.reply_code(), 502);
    assert_eq!(
        e.to_string(),
        "queue.declare: unknown field value type 0x5a"
    );
}

#[test]
fn content_header_errors() {
    let header = |payload: &str| {
        let p = hex(payload);
        let mut f = vec![2, 0, 1];
        f.extend_from_slice(&(p.len() as u32).to_be_bytes());
        f.extend_from_slice(&p);
        f.push(0xCE);
        decode_err(&f)
    };
    let in_header = |kind| DecodeError::Syntax {
        context: SyntaxContext::ContentHeader,
        kind,
    };
    assert_eq!(
        header("003c 0001 0000000000000000 0000"),
        in_header(SyntaxError::NonZeroWeight(1))
    );
    // content-type flag without the string.
    assert_eq!(
        header("003c 0000 0000000000000000 8000"),
        in_header(SyntaxError::Truncated)
    );
    assert_eq!(
        header("003c 0000 0000000000000000 0000 00"),
        in_header(SyntaxError::TrailingBytes)
    );
    let e = header("003c 0000 0000000000000000 0001 0004");
    assert_eq!(e, in_header(SyntaxError::UnknownPropertyFlags(4)));
    assert_eq!(e.reply_code(), 502);
    assert_eq!(e.failing_method(), None);
    assert_eq!(
        header("0032 0000 0000000000000000 8000 00"),
        in_header(SyntaxError::UnknownPropertyFlags(0x8000))
    );
}

/// `levels` tables nested in one another: `{a: {a: ... {}}}`, as a table value (length first).
fn nested_tables(levels: usize, tag: u8) -> Vec<u8> {
    // Built inside out: each level wraps the previous body in one entry `a` of type `tag`.
    let mut body: Vec<u8> = Vec::new();
    for _ in 0..levels {
        let mut entry = Vec::with_capacity(body.len() + 7);
        if tag == b'F' {
            entry.extend_from_slice(&[1, b'a']);
        }
        entry.push(tag);
        entry.extend_from_slice(&(body.len() as u32).to_be_bytes());
        entry.extend_from_slice(&body);
        body = entry;
    }
    let mut table = Vec::with_capacity(body.len() + 4);
    table.extend_from_slice(&(body.len() as u32).to_be_bytes());
    table.extend_from_slice(&body);
    table
}

fn start_ok_with_properties(client_properties: &[u8]) -> Vec<u8> {
    let mut payload = hex("000a 000b");
    payload.extend_from_slice(client_properties);
    payload.extend_from_slice(&hex("05 504c41494e 00000002 0061 05 656e5f5553"));
    method_frame(&payload)
}

#[test]
fn table_depth_bomb_is_a_clean_error() {
    // 2,000 nested tables: a 14 KB connection.start-ok.
    let frame = start_ok_with_properties(&nested_tables(2000, b'F'));
    assert!(
        frame.len() > 14_000 && frame.len() < 15_000,
        "{}",
        frame.len()
    );
    // On a small stack, to show no recursion deeper than the limit happens.
    let result = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || decode_err(&frame))
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert_eq!(result, syntax(10, 11, SyntaxError::TableTooDeep));
    assert_eq!(result.reply_code(), 502);
    assert_eq!(
        result.reply_text(),
        "SYNTAX_ERROR - connection.start-ok: field tables nested deeper than 32"
    );
}

#[test]
fn array_depth_bomb_is_a_clean_error() {
    // One table entry `a`, then 2,000 arrays nested in one another.
    let arrays = nested_tables(2000, b'A');
    let mut props = Vec::new();
    props.extend_from_slice(&((arrays.len() + 3) as u32).to_be_bytes());
    props.extend_from_slice(&[1, b'a', b'A']);
    props.extend_from_slice(&arrays);
    let frame = start_ok_with_properties(&props);
    assert_eq!(
        decode_err(&frame),
        syntax(10, 11, SyntaxError::TableTooDeep)
    );
}

#[test]
fn depth_limit_is_exact() {
    // The client-properties table is level 1, so 31 nested tables inside it make 32: fine.
    let frame = start_ok_with_properties(&nested_tables(MAX_TABLE_DEPTH - 1, b'F'));
    let Frame::Method(_, Method::ConnectionStartOk(ok)) = decode_one(&frame).unwrap() else {
        panic!("expected start-ok")
    };
    // It re-encodes, too.
    let again = encode(&Frame::Method(ChannelId(1), ok.into()));
    assert_eq!(again, frame);
    // One more level is refused.
    let frame = start_ok_with_properties(&nested_tables(MAX_TABLE_DEPTH, b'F'));
    assert_eq!(
        decode_err(&frame),
        syntax(10, 11, SyntaxError::TableTooDeep)
    );
}

#[test]
fn encode_errors_leave_the_buffer_alone() {
    let mut v = FieldValue::Void;
    for _ in 0..=MAX_TABLE_DEPTH {
        v = FieldValue::Table(table(vec![("a", v)]));
    }
    let declare = QueueDeclare {
        arguments: table(vec![("deep", v)]),
        ..Default::default()
    };
    let mut out = BytesMut::from(&b"kept"[..]);
    assert_eq!(
        encode_frame(&Frame::Method(ChannelId(1), declare.into()), &mut out),
        Err(EncodeError::TableTooDeep)
    );
    assert_eq!(&out[..], b"kept");
    let header = ContentHeader {
        class_id: 50,
        body_size: 0,
        properties: BasicProperties {
            priority: Some(1),
            ..Default::default()
        },
    };
    assert_eq!(
        encode_frame(&Frame::Header(ChannelId(1), header), &mut out),
        Err(EncodeError::PropertiesNotAllowed { class_id: 50 })
    );
    assert_eq!(&out[..], b"kept");
}

#[test]
fn reply_text_fits_a_short_string() {
    // A syntax error text is short, but reply_text must cut whatever it gets to 255 bytes.
    let e = DecodeError::MalformedFrame("x");
    assert!(e.reply_text().len() <= 255);
    assert_eq!(e.reply_text(), "FRAME_ERROR - malformed frame: x");
}
