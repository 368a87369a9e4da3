"""Planning a cut (`plan`), the submodel's config (`submodel`), writing it at the file level
(`writer`, `ziparchive`), and the `cut`/`convert` operation (`cutting`)."""
