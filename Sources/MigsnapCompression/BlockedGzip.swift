import CLibDeflate
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Blocked gzip: the payload of a SQLite snapshot, compressed and decompressed on all cores and
// still one plain gzip stream for `gunzip` and `zcat` (a gzip file may hold several members back
// to back; gunzip outputs their concatenation). The layout, every integer little-endian:
//
//   data member × N   one per block of `blockSize` uncompressed bytes (the last one shorter):
//                     1f 8b 08 04 | MTIME 0 | XFL 0 | OS ff | XLEN 8 | 'M' 'b' LEN 4 | u32 member size
//                     | raw deflate | CRC-32 | ISIZE   (the BGZF idea; `'M' 'b'` marks the file)
//   index member × K  empty members whose extra field `'M' 'i'` holds up to 2048 entries of
//                     u64 offset, u32 member size, u32 uncompressed size, u32 CRC-32 of the
//                     uncompressed block (the member's own), u32 CRC-32 of the member's bytes
//   locator member    one empty member, the last 82 bytes of the file, extra field `'M' 'l'`:
//                     u32 version 1, u32 block size, u64 block count, u64 uncompressed size,
//                     u64 index offset, u64 index length, u32 CRC-32 of the index members,
//                     "MIGSNAPB", u32 CRC-32 of the locator's bytes before it
//
// Every byte is covered by a check: the member CRC in the index covers each data member whole
// (headers included, which gzip itself ignores), and the index and locator carry their own CRCs.
// A file that shows any sign of being blocked (the first member's mark, the locator's header or
// its magic: one flipped byte cannot remove all three) is read strictly by its index or refused,
// so a damaged or truncated blocked file never falls back to the lenient sequential reading.
//
// Why libdeflate: measured on 1 MiB blocks of scripts/bench's 70 MiB database, one core, level 6:
// libdeflate deflates 114 MB/s to 28.0% and inflates 790 MB/s; zlib deflates 46 MB/s to 28.9% and
// inflates 491 MB/s; `gzip -6` of the whole file gives 28.8%. Blocks are whole buffers, which is
// all libdeflate does. Old single-stream files are still read with zlib (Gzip.swift).

/// A blocked file's shape: where each block is and what it must decompress to.
struct BlockEntry: Equatable {
    var offset: UInt64
    var storedLength: UInt32
    var rawLength: UInt32
    var rawCRC: UInt32
    var storedCRC: UInt32

    static let encodedSize = 24
}

struct BlockedLayout {
    var blockSize: Int
    var entries: [BlockEntry]
    var rawBytes: Int64
}

enum BlockedFormat {
    static let defaultBlockSize = 1 << 20
    static let blockSizes = 4096...(16 << 20)
    static let version: UInt32 = 1
    static let entriesPerIndexMember = 2048
    static let magic: [UInt8] = Array("MIGSNAPB".utf8)

    /// The fixed start of every data member, up to its size field.
    static let dataHeaderPrefix: [UInt8] = [0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 8, 0, 0x4d, 0x62, 4, 0]
    static let dataHeaderSize = 20
    static let memberTailSize = 8
    /// An empty deflate stream (one final fixed-Huffman block), then CRC-32 0 and ISIZE 0.
    static let emptyBodyAndTail: [UInt8] = [3, 0, 0, 0, 0, 0, 0, 0, 0, 0]

    static let locatorPayloadSize = 56
    static let locatorSize = 16 + locatorPayloadSize + emptyBodyAndTail.count
    static let locatorCRCOffset = 16 + locatorPayloadSize - 4
    static let locatorMagicOffset = locatorCRCOffset - magic.count

    /// The most a member may take for a block: deflate's worst case is a few bytes per 64 KiB.
    static func maxStoredLength(blockSize: Int) -> Int {
        dataHeaderSize + blockSize + blockSize / 16 + 1024 + memberTailSize
    }

    /// Blocks in flight at once (one buffer in, one out each): at most about 36 MiB, at least 2, so
    /// that a run on 16 cores stays within 64 MiB in all (48 MiB gave 70 MiB peak there; 18 slots keep
    /// 16 workers busy).
    static func slots(threads: Int, blockSize: Int) -> Int {
        let limit = max(2, (36 << 20) / (2 * blockSize))
        return max(2, min(2 * threads, limit))
    }

    static func emptyMember(_ id: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff]
        bytes.appendLE(UInt16(4 + payload.count))
        bytes += [0x4d, id]
        bytes.appendLE(UInt16(payload.count))
        bytes += payload
        bytes += emptyBodyAndTail
        return bytes
    }

    static func emptyMemberHeader(_ id: UInt8, payloadSize: Int) -> [UInt8] {
        Array(emptyMember(id, [UInt8](repeating: 0, count: payloadSize)).prefix(16))
    }

    /// The index members and the locator that end a blocked file.
    static func trailer(entries: [BlockEntry], blockSize: Int, rawBytes: Int64, indexOffset: UInt64) -> [UInt8] {
        var index: [UInt8] = []
        var start = 0
        while start < entries.count {
            let end = min(start + entriesPerIndexMember, entries.count)
            var payload: [UInt8] = []
            payload.reserveCapacity((end - start) * BlockEntry.encodedSize)
            for entry in entries[start..<end] {
                payload.appendLE(entry.offset)
                payload.appendLE(entry.storedLength)
                payload.appendLE(entry.rawLength)
                payload.appendLE(entry.rawCRC)
                payload.appendLE(entry.storedCRC)
            }
            index += emptyMember(0x69, payload)
            start = end
        }
        var payload: [UInt8] = []
        payload.appendLE(version)
        payload.appendLE(UInt32(blockSize))
        payload.appendLE(UInt64(entries.count))
        payload.appendLE(UInt64(rawBytes))
        payload.appendLE(indexOffset)
        payload.appendLE(UInt64(index.count))
        payload.appendLE(crc32(index))
        payload += magic
        payload.appendLE(UInt32(0))
        var locator = emptyMember(0x6c, payload)
        let crc = crc32(Array(locator[0..<locatorCRCOffset]))
        locator.replaceSubrange(locatorCRCOffset..<locatorCRCOffset + 4, with: crc.littleEndianBytes)
        return index + locator
    }

    static func indexLength(blockCount: Int) -> Int {
        let members = (blockCount + entriesPerIndexMember - 1) / entriesPerIndexMember
        return blockCount * BlockEntry.encodedSize + members * (16 + emptyBodyAndTail.count)
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(libdeflate_crc32(0, $0.baseAddress, $0.count)) }
    }

    static func damaged(_ what: String) -> GzipError {
        GzipError(.corrupt, "the blocked gzip index is damaged (\(what)): the file is corrupted or truncated")
    }

    /// The layout of a blocked file, nil for any other gzip file; a file that looks blocked but
    /// whose index does not hold together is an error.
    static func layout(of file: FileDescriptor) throws -> BlockedLayout? {
        let size = try file.size()
        var looksBlocked = false
        if size >= Int64(dataHeaderSize) {
            looksBlocked = try file.read(count: dataHeaderPrefix.count, at: 0) == dataHeaderPrefix
        }
        var locator: [UInt8] = []
        if size >= Int64(locatorSize) {
            locator = try file.read(count: locatorSize, at: size - Int64(locatorSize))
            let header = emptyMemberHeader(0x6c, payloadSize: locatorPayloadSize)
            looksBlocked = looksBlocked || Array(locator[0..<16]) == header
                || Array(locator[locatorMagicOffset..<locatorCRCOffset]) == magic
        }
        guard looksBlocked else { return nil }
        guard !locator.isEmpty else { throw damaged("the file is too short to hold it") }

        guard Array(locator[0..<16]) == emptyMemberHeader(0x6c, payloadSize: locatorPayloadSize),
              Array(locator[locatorCRCOffset + 4..<locatorSize]) == emptyBodyAndTail,
              crc32(Array(locator[0..<locatorCRCOffset])) == locator.readLE(UInt32.self, at: locatorCRCOffset),
              Array(locator[locatorMagicOffset..<locatorCRCOffset]) == magic
        else { throw damaged("its locator at the end of the file fails its check") }
        let version = locator.readLE(UInt32.self, at: 16)
        guard version == Self.version else {
            throw GzipError(.corrupt, "blocked gzip version \(version) is not one this migsnap reads")
        }
        let blockSize = Int(locator.readLE(UInt32.self, at: 20))
        let blockCount = locator.readLE(UInt64.self, at: 24)
        let rawBytes = locator.readLE(UInt64.self, at: 32)
        let indexOffset = locator.readLE(UInt64.self, at: 40)
        let indexLength = locator.readLE(UInt64.self, at: 48)
        let indexCRC = locator.readLE(UInt32.self, at: 56)
        let indexEnd = UInt64(size) - UInt64(locatorSize)
        guard blockSizes.contains(blockSize),
              indexOffset <= indexEnd, blockCount <= indexOffset / 29,
              indexLength == indexEnd - indexOffset,
              indexLength == UInt64(Self.indexLength(blockCount: Int(blockCount))),
              rawBytes <= blockCount * UInt64(blockSize), rawBytes + UInt64(blockSize) > blockCount * UInt64(blockSize)
        else { throw damaged("its sizes do not add up") }

        let index = try file.read(count: Int(indexLength), at: Int64(indexOffset))
        guard crc32(index) == indexCRC else { throw damaged("CRC mismatch") }
        var entries: [BlockEntry] = []
        entries.reserveCapacity(Int(blockCount))
        var position = 0
        var expectedOffset: UInt64 = 0
        var remaining = rawBytes
        let maxStored = UInt32(maxStoredLength(blockSize: blockSize))
        while entries.count < Int(blockCount) {
            let count = min(entriesPerIndexMember, Int(blockCount) - entries.count)
            let payloadSize = count * BlockEntry.encodedSize
            guard Array(index[position..<position + 16]) == emptyMemberHeader(0x69, payloadSize: payloadSize) else {
                throw damaged("an index member's header")
            }
            position += 16
            for _ in 0..<count {
                let entry = BlockEntry(
                    offset: index.readLE(UInt64.self, at: position), storedLength: index.readLE(UInt32.self, at: position + 8),
                    rawLength: index.readLE(UInt32.self, at: position + 12), rawCRC: index.readLE(UInt32.self, at: position + 16),
                    storedCRC: index.readLE(UInt32.self, at: position + 20))
                let fullBlock = remaining >= UInt64(blockSize)
                guard entry.offset == expectedOffset,
                      entry.storedLength >= UInt32(dataHeaderSize + 2 + memberTailSize), entry.storedLength <= maxStored,
                      entry.rawLength == (fullBlock ? UInt32(blockSize) : UInt32(remaining)), entry.rawLength > 0
                else { throw damaged("block \(entries.count + 1)'s entry") }
                entries.append(entry)
                expectedOffset += UInt64(entry.storedLength)
                remaining -= UInt64(entry.rawLength)
                position += BlockEntry.encodedSize
            }
            guard Array(index[position..<position + emptyBodyAndTail.count]) == emptyBodyAndTail else {
                throw damaged("an index member's end")
            }
            position += emptyBodyAndTail.count
        }
        guard expectedOffset == indexOffset, remaining == 0 else { throw damaged("the blocks do not fill the file") }
        return BlockedLayout(blockSize: blockSize, entries: entries, rawBytes: Int64(rawBytes))
    }
}

/// One block in flight: the bytes going in, the bytes coming out, and what happened.
private final class BlockSlot: @unchecked Sendable {
    let input: UnsafeMutableRawBufferPointer
    let output: UnsafeMutableRawBufferPointer
    var inputCount = 0
    var outputCount = 0
    var entry = BlockEntry(offset: 0, storedLength: 0, rawLength: 0, rawCRC: 0, storedCRC: 0)
    var index = 0
    var error: GzipError?

    init(inputCapacity: Int, outputCapacity: Int) {
        input = .allocate(byteCount: inputCapacity, alignment: 64)
        output = .allocate(byteCount: outputCapacity, alignment: 64)
    }

    deinit {
        input.deallocate()
        output.deallocate()
    }
}

/// A libdeflate compressor, used by one thread at a time.
private final class DeflateCompressor {
    let pointer: OpaquePointer

    init(level: Int32) throws {
        guard let pointer = libdeflate_alloc_compressor(level) else {
            throw GzipError(.io, "cannot start deflate compression at level \(level)")
        }
        self.pointer = pointer
    }

    deinit { libdeflate_free_compressor(pointer) }
}

/// A libdeflate decompressor, used by one thread at a time.
private final class DeflateDecompressor {
    let pointer: OpaquePointer

    init() throws {
        guard let pointer = libdeflate_alloc_decompressor() else {
            throw GzipError(.io, "cannot start deflate decompression")
        }
        self.pointer = pointer
    }

    deinit { libdeflate_free_decompressor(pointer) }
}

extension Gzip {
    /// The uncompressed size of one block of a blocked gzip file.
    public static let blockSize = BlockedFormat.defaultBlockSize

    /// Compresses `source` into a new blocked gzip file `destination` (0600; fsynced unless
    /// `fsync` is false) on `threads` threads: one gzip member per `blockSize` bytes, then the
    /// index, written front to back. The output is the same bytes whatever the number of threads.
    /// Memory stays within a few blocks per thread.
    public static func compressBlocked(
        file source: String, to destination: String, threads: Int = Parallelism.cores, level: Int32 = 6,
        blockSize: Int = Gzip.blockSize, fsync: Bool = true, progress: ((Int64) -> Void)? = nil
    ) throws -> (rawBytes: Int64, storedBytes: Int64) {
        precondition(BlockedFormat.blockSizes.contains(blockSize), "block size out of range")
        let input = try FileDescriptor(reading: source)
        let output = try FileDescriptor(creating: destination)
        var completed = false
        defer { if !completed { unlink(destination) } }

        let slotCount = BlockedFormat.slots(threads: threads, blockSize: blockSize)
        let workers = max(1, min(threads, slotCount - 1))
        let compressors = try (0..<workers).map { _ in try DeflateCompressor(level: level) }
        let outputCapacity = BlockedFormat.dataHeaderSize
            + libdeflate_deflate_compress_bound(compressors[0].pointer, blockSize) + BlockedFormat.memberTailSize
        let slots = (0..<slotCount).map { _ in BlockSlot(inputCapacity: blockSize, outputCapacity: outputCapacity) }
        let pool = try WorkerPool(threads: workers) { worker, job in
            compressBlock(slots[job % slots.count], compressors[worker].pointer)
        }
        defer { pool.shutdown() }

        var entries: [BlockEntry] = []
        var stored: UInt64 = 0
        var raw: Int64 = 0
        var submitted = 0
        var endOfInput = false
        while true {
            while !endOfInput && submitted - entries.count < slots.count {
                let slot = slots[submitted % slots.count]
                slot.inputCount = try input.readFully(into: slot.input)
                if slot.inputCount == 0 {
                    endOfInput = true
                    break
                }
                slot.index = submitted
                slot.error = nil
                pool.submit(submitted)
                submitted += 1
                if slot.inputCount < blockSize { endOfInput = true }
            }
            if entries.count == submitted { break }
            pool.wait(for: entries.count)
            let slot = slots[entries.count % slots.count]
            if let error = slot.error { throw error }
            try output.writeAll(UnsafeRawBufferPointer(rebasing: slot.output[0..<slot.outputCount]))
            var entry = slot.entry
            entry.offset = stored
            entries.append(entry)
            stored += UInt64(slot.outputCount)
            raw += Int64(slot.inputCount)
            progress?(raw)
        }
        let trailer = BlockedFormat.trailer(entries: entries, blockSize: blockSize, rawBytes: raw, indexOffset: stored)
        try trailer.withUnsafeBytes { try output.writeAll($0) }
        try output.close(sync: fsync)
        completed = true
        return (raw, Int64(stored) + Int64(trailer.count))
    }

    /// Deflates one block into one gzip member; runs on a worker thread.
    private static func compressBlock(_ slot: BlockSlot, _ compressor: OpaquePointer) {
        let header = BlockedFormat.dataHeaderSize
        let out = slot.output.baseAddress!
        let body = libdeflate_deflate_compress(
            compressor, slot.input.baseAddress, slot.inputCount,
            out + header, slot.output.count - header - BlockedFormat.memberTailSize)
        guard body > 0 else {
            slot.error = GzipError(.io, "deflate compression failed on block \(slot.index + 1)")
            return
        }
        let total = header + body + BlockedFormat.memberTailSize
        let rawCRC = UInt32(libdeflate_crc32(0, slot.input.baseAddress, slot.inputCount))
        var bytes = BlockedFormat.dataHeaderPrefix
        bytes.appendLE(UInt32(total))
        bytes.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: header) }
        var tail: [UInt8] = []
        tail.appendLE(rawCRC)
        tail.appendLE(UInt32(truncatingIfNeeded: slot.inputCount))
        tail.withUnsafeBytes { (out + header + body).copyMemory(from: $0.baseAddress!, byteCount: BlockedFormat.memberTailSize) }
        slot.outputCount = total
        slot.entry = BlockEntry(
            offset: 0, storedLength: UInt32(total), rawLength: UInt32(slot.inputCount), rawCRC: rawCRC,
            storedCRC: UInt32(libdeflate_crc32(0, out, total)))
    }

    /// Decompresses a blocked file by its index on `threads` threads, writing blocks in order.
    static func decompressBlocked(
        _ input: FileDescriptor, _ layout: BlockedLayout, to destination: String, fsync: Bool, threads: Int,
        progress: ((Int64) -> Void)?
    ) throws -> Int64 {
        let output = try FileDescriptor(creating: destination)
        var completed = false
        defer { if !completed { unlink(destination) } }

        let entries = layout.entries
        let slotCount = BlockedFormat.slots(threads: threads, blockSize: layout.blockSize)
        let workers = max(1, min(threads, slotCount - 1, max(1, entries.count)))
        let decompressors = try (0..<workers).map { _ in try DeflateDecompressor() }
        let inputCapacity = Int(entries.map(\.storedLength).max() ?? 0)
        let slots = (0..<slotCount).map { _ in BlockSlot(inputCapacity: inputCapacity, outputCapacity: layout.blockSize) }
        let pool = try WorkerPool(threads: workers) { worker, job in
            decompressBlock(slots[job % slots.count], decompressors[worker].pointer)
        }
        defer { pool.shutdown() }

        var submitted = 0
        var written = 0
        var done: Int64 = 0
        while written < entries.count {
            while submitted < entries.count && submitted - written < slots.count {
                let slot = slots[submitted % slots.count]
                let entry = entries[submitted]
                try input.read(into: UnsafeMutableRawBufferPointer(rebasing: slot.input[0..<Int(entry.storedLength)]),
                               at: Int64(entry.offset))
                slot.inputCount = Int(entry.storedLength)
                slot.entry = entry
                slot.index = submitted
                slot.error = nil
                pool.submit(submitted)
                submitted += 1
            }
            pool.wait(for: written)
            let slot = slots[written % slots.count]
            if let error = slot.error { throw error }
            try output.writeAll(UnsafeRawBufferPointer(rebasing: slot.output[0..<slot.outputCount]))
            done += Int64(slot.outputCount)
            written += 1
            progress?(done)
        }
        try output.close(sync: fsync)
        completed = true
        return done
    }

    /// Checks and inflates one member; runs on a worker thread.
    private static func decompressBlock(_ slot: BlockSlot, _ decompressor: OpaquePointer) {
        let entry = slot.entry
        let block = "block \(slot.index + 1)"
        guard UInt32(libdeflate_crc32(0, slot.input.baseAddress, slot.inputCount)) == entry.storedCRC else {
            slot.error = GzipError(.corrupt, "\(block): CRC mismatch: the data is corrupted")
            return
        }
        var consumed = 0
        var produced = 0
        let result = libdeflate_gzip_decompress_ex(
            decompressor, slot.input.baseAddress, slot.inputCount, slot.output.baseAddress, slot.output.count,
            &consumed, &produced)
        // libdeflate checks the member's CRC-32 and ISIZE itself; a sound member also fills it exactly.
        let memberCRC = slot.input.loadUnaligned(fromByteOffset: slot.inputCount - 8, as: UInt32.self)
        guard result == LIBDEFLATE_SUCCESS, consumed == slot.inputCount, produced == Int(entry.rawLength),
              UInt32(littleEndian: memberCRC) == entry.rawCRC
        else {
            slot.error = GzipError(.corrupt, "\(block): the data is corrupted (it does not inflate to what the index says)")
            return
        }
        slot.outputCount = produced
    }
}

extension FileDescriptor {
    func size() throws -> Int64 {
        if let arriving { return arriving.size }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw GzipError.os("reading", path) }
        return Int64(info.st_size)
    }

    /// Fills `buffer` from `offset`; a file that ends first is truncated.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws {
        try arriving?.wait(offset, Int64(buffer.count))
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw GzipError.os("reading", path)
            }
            if n == 0 { throw GzipError(.corrupt, "the file is truncated") }
            done += n
        }
    }

    func read(count: Int, at offset: Int64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        return bytes
    }

    /// Reads until `buffer` is full or the file ends; returns how much it read.
    func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            if n == 0 { break }
            done += n
        }
        return done
    }
}

extension FixedWidthInteger {
    var littleEndianBytes: [UInt8] {
        withUnsafeBytes(of: littleEndian) { Array($0) }
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        append(contentsOf: value.littleEndianBytes)
    }

    func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value = T.zero
        Swift.withUnsafeMutableBytes(of: &value) { target in
            self.withUnsafeBytes { source in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<offset + MemoryLayout<T>.size]))
            }
        }
        return T(littleEndian: value)
    }
}
