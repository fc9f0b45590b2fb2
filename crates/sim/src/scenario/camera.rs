//! `camera`: motion cameras sending pictures — real, valid baseline JPEGs of the chosen
//! resolution and of a realistic size, with the camera id, date and time.
//!
//! The picture is encoded here, without an image library: a grayscale baseline JPEG whose
//! 8×8 blocks are each of one shade (only the DC coefficient, then end-of-block), showing
//! a soft background and a bright "moving object" whose position follows the clock — so
//! consecutive pictures differ, as motion pictures do. Such a scan is only a few KB, so
//! the file is then padded to the size a real camera's JPEG of that resolution has
//! (±15 %) with APP15 segments of random bytes, which every decoder skips. A COM segment
//! reads `ingot-sim camera <id> <date-time> <width>x<height>`.
//!
//! The event fields travel beside the bytes: `device` (the camera), `sensor`
//! (`--sensor`, default `front`), `kind` = `motion`, `ts` — as the query string over HTTP,
//! URI-Query options over CoAP, and the topic and MQTT 5 user properties over MQTT.

use ingot_core::Timestamp;

use super::{Message, check_name, ts_text};
use crate::error::SimError;
use crate::rng::Rng;

/// A camera resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Resolution {
    /// 320×188.
    #[value(name = "320x188")]
    Small,
    /// 640×480.
    #[value(name = "640x480")]
    Vga,
    /// 1280×720.
    #[value(name = "1280x720")]
    Hd,
}

impl Resolution {
    /// Width and height in pixels.
    pub fn size(self) -> (u16, u16) {
        match self {
            Resolution::Small => (320, 188),
            Resolution::Vga => (640, 480),
            Resolution::Hd => (1280, 720),
        }
    }

    /// The typical size of a camera's JPEG at this resolution, bytes.
    pub fn typical_bytes(self) -> usize {
        match self {
            Resolution::Small => 12_000,
            Resolution::Vga => 45_000,
            Resolution::Hd => 110_000,
        }
    }
}

/// Options of the `camera` scenario.
#[derive(Debug, Clone)]
pub struct CameraOptions {
    /// Picture resolution.
    pub resolution: Resolution,
    /// The sensor name of every camera.
    pub sensor: String,
}

impl Default for CameraOptions {
    fn default() -> Self {
        CameraOptions {
            resolution: Resolution::Vga,
            sensor: "front".into(),
        }
    }
}

impl CameraOptions {
    pub(super) fn validate(&self) -> Result<(), SimError> {
        check_name("sensor", &self.sensor)
    }
}

/// A camera's state.
#[derive(Debug)]
pub struct Camera {
    name: String,
    sensor: String,
    resolution: Resolution,
    rng: Rng,
    shots: u64,
}

impl Camera {
    pub(super) fn new(options: &CameraOptions, name: String, index: usize, seed: u64) -> Camera {
        Camera {
            name,
            sensor: options.sensor.clone(),
            resolution: options.resolution,
            rng: Rng::new(seed, 0x4341_4D00 ^ index as u64),
            shots: 0,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn next(&mut self, now: Timestamp, out: &mut Message) {
        let ts = ts_text(now);
        let (width, height) = self.resolution.size();
        let comment = format!("ingot-sim camera {} {ts} {width}x{height}", self.name);
        let target = (self.resolution.typical_bytes() as f64 * self.rng.range(0.85, 1.15)) as usize;
        let phase = (now.as_millis() / 100) as f64 / 10.0 + self.shots as f64 * 0.37;
        encode_jpeg(
            &mut out.body,
            width,
            height,
            &comment,
            target,
            phase,
            &mut self.rng,
        );
        self.shots += 1;
        out.binary = Some("image/jpeg");
        out.meta.push(("device", self.name.clone()));
        out.meta.push(("sensor", self.sensor.clone()));
        out.meta.push(("kind", "motion".to_owned()));
        out.meta.push(("ts", ts));
    }
}

/// Writes bits most significant first, stuffing a 0 after every 0xFF byte.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u32,
    bits: u32,
}

impl BitWriter<'_> {
    fn put(&mut self, value: u32, len: u32) {
        for i in (0..len).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1);
            self.bits += 1;
            if self.bits == 8 {
                let byte = self.acc as u8;
                self.out.push(byte);
                if byte == 0xFF {
                    self.out.push(0);
                }
                self.acc = 0;
                self.bits = 0;
            }
        }
    }

    /// Pads the last byte with 1 bits.
    fn finish(&mut self) {
        if self.bits > 0 {
            let len = 8 - self.bits;
            self.put((1 << len) - 1, len);
        }
    }
}

/// The standard luminance DC table (JPEG Annex K.3): code lengths per length 1..16, and
/// the codes of categories 0..11.
const DC_COUNTS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_CODES: [(u32, u32); 12] = [
    (0b00, 2),
    (0b010, 3),
    (0b011, 3),
    (0b100, 3),
    (0b101, 3),
    (0b110, 3),
    (0b1110, 4),
    (0b11110, 5),
    (0b111110, 6),
    (0b1111110, 7),
    (0b11111110, 8),
    (0b111111110, 9),
];
/// The standard luminance AC table (Annex K.3); only its end-of-block code (0x00 → 1010)
/// is used.
const AC_COUNTS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_VALUES: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];
const EOB: (u32, u32) = (0b1010, 4);
/// Every quantizer is 8, so a block's quantized DC is its shade − 128.
const QUANT: u8 = 8;

fn segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// Encodes a grayscale picture of `width`×`height` into `out`, padded towards
/// `target_bytes`. `phase` moves the bright object across the picture.
pub(crate) fn encode_jpeg(
    out: &mut Vec<u8>,
    width: u16,
    height: u16,
    comment: &str,
    target_bytes: usize,
    phase: f64,
    rng: &mut Rng,
) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    segment(out, 0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    let comment = &comment.as_bytes()[..comment.len().min(60_000)];
    segment(out, 0xFE, comment);
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[QUANT; 64]);
    segment(out, 0xDB, &dqt);
    let [wh, wl] = width.to_be_bytes();
    let [hh, hl] = height.to_be_bytes();
    segment(out, 0xC0, &[8, hh, hl, wh, wl, 1, 1, 0x11, 0]);
    let mut dht = vec![0x00];
    dht.extend_from_slice(&DC_COUNTS);
    dht.extend((0u8..12).collect::<Vec<_>>());
    dht.push(0x10);
    dht.extend_from_slice(&AC_COUNTS);
    dht.extend_from_slice(&AC_VALUES);
    segment(out, 0xC4, &dht);
    // Padding before the scan, so a decoder meets it among the header segments.
    let scan_estimate = usize::from(width.div_ceil(8)) * usize::from(height.div_ceil(8)) * 6 / 8;
    let mut pad = target_bytes.saturating_sub(out.len() + scan_estimate + 16);
    while pad > 4 {
        let len = pad.min(65_533 - 2) - 2;
        out.extend_from_slice(&[0xFF, 0xEF]);
        out.extend_from_slice(&((len + 2) as u16).to_be_bytes());
        let start = out.len();
        out.resize(start + len, 0);
        for chunk in out[start..].chunks_mut(8) {
            let bytes = rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        pad = pad.saturating_sub(len + 4);
    }
    segment(out, 0xDA, &[1, 1, 0x00, 0, 63, 0]);
    let (bw, bh) = (i32::from(width.div_ceil(8)), i32::from(height.div_ceil(8)));
    // The object: a bright disc gliding along an ellipse.
    let cx = f64::from(bw) * (0.5 + 0.35 * phase.cos());
    let cy = f64::from(bh) * (0.5 + 0.3 * (phase * 1.3).sin());
    let r = f64::from(bw.min(bh)) * 0.12 + 1.0;
    let mut bits = BitWriter {
        out,
        acc: 0,
        bits: 0,
    };
    let mut previous = 0i32;
    for by in 0..bh {
        for bx in 0..bw {
            let sky = 150.0 - 60.0 * f64::from(by) / f64::from(bh);
            let ground = if f64::from(by) > f64::from(bh) * 0.65 {
                -50.0
            } else {
                0.0
            };
            let d = ((f64::from(bx) - cx).powi(2) + (f64::from(by) - cy).powi(2)).sqrt();
            let object = if d < r { 90.0 } else { 0.0 };
            let grain = rng.range(-6.0, 6.0);
            let shade = (sky + ground + object + grain).clamp(0.0, 255.0) as i32;
            let dc = shade - 128;
            let diff = dc - previous;
            previous = dc;
            let category = 32 - diff.unsigned_abs().leading_zeros();
            let (code, len) = DC_CODES[category as usize];
            bits.put(code, len);
            if category > 0 {
                let value = if diff < 0 { diff - 1 } else { diff };
                bits.put(value as u32 & ((1 << category) - 1), category);
            }
            bits.put(EOB.0, EOB.1);
        }
    }
    bits.finish();
    out.extend_from_slice(&[0xFF, 0xD9]);
}
