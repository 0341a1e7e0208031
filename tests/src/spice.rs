//! SPICE wire messages the tests send through the proxy (the SPICE link protocol, little
//! endian): enough for a SPICE server to answer with its SpiceLinkReply.

/// A SpiceLinkHeader (`REDQ`, 2.2) and a SpiceLinkMess without capabilities.
pub fn link_mess(channel_type: u8, connection_id: u32) -> Vec<u8> {
    let mut m = b"REDQ".to_vec();
    for v in [2u32, 2, 18] {
        m.extend(v.to_le_bytes());
    }
    m.extend(connection_id.to_le_bytes());
    m.extend([channel_type, 0]);
    for v in [0u32, 0, 18] {
        m.extend(v.to_le_bytes());
    }
    m
}
