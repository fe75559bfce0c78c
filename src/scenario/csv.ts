// A small RFC 4180 CSV parser: quoted fields, doubled quotes inside quotes, CRLF / LF / CR
// line ends, newlines embedded in quoted fields, an optional UTF-8 BOM. Each record
// carries the physical line number it starts on, so importers can point at bad rows.

export interface CsvRecord {
  /** 1-based physical line on which the record starts. */
  line: number;
  fields: string[];
}

export class CsvError extends Error {
  override readonly name = 'CsvError';
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

export interface CsvOptions {
  /** Field separator, one character (default `,`). */
  delimiter?: string;
}

/**
 * Parses CSV text into records. Lenient where RFC 4180 is silent: a quote inside an
 * unquoted field is kept literally, and characters between a closing quote and the next
 * separator are appended to the field. An unterminated quoted field is an error (it would
 * silently swallow the rest of the file). A final line end does not start an empty record;
 * blank lines elsewhere come back as a record with one empty field.
 */
export function parseCsv(text: string, options: CsvOptions = {}): CsvRecord[] {
  const delimiter = options.delimiter ?? ',';
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new CsvError(0, `delimiter must be one character other than a quote or line end`);
  }
  const records: CsvRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;
  let line = 1;
  if (i >= n) return records;

  let fields: string[] = [];
  let recordLine = line;
  let field = '';
  // At the start of a field (so that a quote opens a quoted field).
  let fieldStart = true;

  const endRecord = (): void => {
    fields.push(field);
    records.push({ line: recordLine, fields });
    fields = [];
    field = '';
    fieldStart = true;
  };

  while (i < n) {
    const ch = text[i];
    if (fieldStart && ch === '"') {
      // Quoted field: read to the closing quote, "" is a literal quote.
      const openLine = line;
      i++;
      let closed = false;
      let chunkStart = i;
      while (i < n) {
        const c = text[i];
        if (c === '"') {
          field += text.slice(chunkStart, i);
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            chunkStart = i;
            continue;
          }
          i++;
          closed = true;
          break;
        }
        if (c === '\r') {
          // CRLF or a lone CR inside quotes counts as one line end.
          if (text[i + 1] === '\n') i++;
          line++;
        } else if (c === '\n') {
          line++;
        }
        i++;
      }
      if (!closed) throw new CsvError(openLine, 'unterminated quoted field');
      // Inside quotes, line ends were kept verbatim by the slices above.
      fieldStart = false;
      continue;
    }
    if (ch === delimiter) {
      fields.push(field);
      field = '';
      fieldStart = true;
      i++;
      continue;
    }
    if (ch === '\r' || ch === '\n') {
      endRecord();
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
      recordLine = line;
      continue;
    }
    // Unquoted run up to the next special character.
    let j = i + 1;
    while (j < n) {
      const c = text[j];
      if (c === delimiter || c === '\r' || c === '\n') break;
      j++;
    }
    field += text.slice(i, j);
    fieldStart = false;
    i = j;
  }
  // Flush the last record unless the text ended with a line end.
  // (A line end as the last character is always outside quotes: an open quote would have thrown.)
  const last = text[n - 1];
  if (last !== '\n' && last !== '\r') endRecord();
  return records;
}

/** Quotes a value for CSV output when it needs it (separator, quote, CR or LF). */
export function csvField(value: string, delimiter = ','): string {
  if (value.includes(delimiter) || value.includes('"') || value.includes('\n') || value.includes('\r')) {
    return `"${value.replaceAll('"', '""')}"`;
  }
  return value;
}
