//! A PNG encoder for indexed-colour rasters (the chaos timeline): signature, `IHDR` (8-bit
//! palette), `PLTE`, one zlib-compressed `IDAT` (rows filtered "Up", so repeated rows compress
//! to almost nothing) and `IEND`, each chunk with its CRC-32 (PNG spec, ISO/IEC 15948).

/// `pixels` (`width × height` palette indices, row after row) as a PNG file.
pub fn encode(width: usize, height: usize, pixels: &[u8], palette: &[[u8; 3]]) -> Vec<u8> {
    debug_assert_eq!(pixels.len(), width * height);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    // Bit depth 8, colour type 3 (palette), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let plte: Vec<u8> = palette.iter().flatten().copied().collect();
    chunk(&mut out, b"PLTE", &plte);
    let mut raw = Vec::with_capacity((width + 1) * height);
    for y in 0..height {
        let row = &pixels[y * width..(y + 1) * width];
        if y == 0 {
            raw.push(0); // None
            raw.extend_from_slice(row);
        } else {
            raw.push(2); // Up: each byte minus the one above
            let above = &pixels[(y - 1) * width..y * width];
            raw.extend(row.iter().zip(above).map(|(a, b)| a.wrapping_sub(*b)));
        }
    }
    chunk(
        &mut out,
        b"IDAT",
        &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 9),
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_carry_their_crc_and_the_image_data_inflates_to_the_filtered_rows() {
        let (w, h) = (3, 2);
        let pixels = [0, 1, 1, 0, 2, 1];
        let png = encode(w, h, &pixels, &[[0, 0, 0], [255, 0, 0], [0, 255, 0]]);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut at = 8;
        let mut kinds = Vec::new();
        let mut idat = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let body = &png[at + 4..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32fast::hash(body), crc);
            kinds.push(String::from_utf8_lossy(&body[..4]).into_owned());
            if &body[..4] == b"IDAT" {
                idat = body[4..].to_vec();
            }
            at += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "PLTE", "IDAT", "IEND"]);
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat).expect("zlib");
        // Row 0 unfiltered; row 1 "Up": [0-0, 2-1, 1-1].
        assert_eq!(raw, [0, 0, 1, 1, 2, 0, 1, 0]);
    }
}
