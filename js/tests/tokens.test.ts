import { describe, expect, it } from "vitest";
import { alphaOf, MAX_ALPHA, signedRGBA } from "../src/lib/signed";
import { positionedLabels, surface, textSegments, topFeatures, validSpans } from "../src/lib/tokens";

describe("textSegments", () => {
  const text = "It wasn't unwatchable!";
  const feats = ["it", "wasn", "'", "t", "un", "##watch", "##able", "!"];
  const spans = [[0, 2], [3, 7], [7, 8], [8, 9], [10, 12], [12, 17], [17, 21], [21, 22]];
  it("cuts the text at the spans, gaps as plain text, the original text exactly", () => {
    const segs = textSegments(text, feats, spans);
    expect(segs.map((s) => s.text).join("")).toBe(text);
    expect(segs.filter((s) => s.feature >= 0).map((s) => s.text)).toEqual(["It", "wasn", "'", "t", "un", "watch", "able", "!"]);
    expect(segs[1]).toEqual({ text: " ", feature: -1 });
  });
  it("without valid spans: features joined, ## pieces glued on", () => {
    expect(textSegments(text, feats, null).map((s) => s.text).join("")).toBe("it wasn ' t unwatchable !");
    expect(textSegments(text, feats, [[0, 2]]).length).toBe(13); // wrong count: 8 features joined by 5 spaces
    expect(validSpans([[0, 2], [1, 3]], 2, 5)).toBe(false); // overlap
    expect(validSpans([[0, 2], [2, 9]], 2, 5)).toBe(false); // out of the text
    expect(surface("▁hello")).toBe("hello");
    expect(surface("##")).toBe("##");
  });
});

describe("topFeatures and colours", () => {
  it("by |value|, ties by index", () => {
    expect(topFeatures([0.1, -0.5, 0.5, 0, NaN], 3)).toEqual([1, 2, 0]);
    expect(topFeatures([1, 2], 0)).toEqual([]);
  });
  it("sign picks red or blue, alpha grows with |v| to MAX_ALPHA", () => {
    expect(signedRGBA(1, 2)).toBe(`rgba(255, 13, 87, ${(MAX_ALPHA / 2).toFixed(3)})`);
    expect(signedRGBA(-4, 2)).toBe(`rgba(30, 136, 229, ${MAX_ALPHA.toFixed(3)})`);
    expect(signedRGBA(-1, 2, false).startsWith("rgba(255, 13, 87")).toBe(true);
    expect(alphaOf(1, 0)).toBe(0);
    expect(alphaOf(NaN, 1)).toBe(0);
  });
});

describe("positionedLabels", () => {
  it("adds the position to words that occur more than once", () => {
    expect(positionedLabels(["The", "film", "the", "cast", "film"])).toEqual([
      "The (pos 1)", "film (pos 2)", "the (pos 3)", "cast", "film (pos 5)",
    ]);
    expect(positionedLabels(["▁good", "good", "##s"])).toEqual(["▁good (pos 1)", "good (pos 2)", "##s"]);
  });
});
