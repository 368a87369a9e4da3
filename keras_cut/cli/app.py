"""The `keras-cut` command: a thin Typer skin over the library.

Each command opens, calls one library function and renders; errors meet the user in one place
(`_user_errors`), as one `Error: …` line on stderr and exit 2.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from keras_cut import __version__
from keras_cut.core.errors import KerasCutError, Option, UsageError
from keras_cut.diff.filediff import ChangeKind
from keras_cut.inspect.inspection import inspect_layer, inspect_model
from keras_cut.model.classmodel import ClassModelReport
from keras_cut.present.render import (
    parse_columns,
    print_json,
    render_class_model,
    render_cut,
    render_diff,
    render_inspect,
    render_layer,
    render_verify,
    stderr_console,
    stdout_console,
)

app = typer.Typer(
    name="keras-cut",
    help="Take saved Keras models apart: inspect them, cut submodels, verify the cuts.",
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state = {"debug": False}


def _examples(*lines: str) -> str:
    """A command's --help ends with these (`\b` keeps click from rewrapping them)."""
    return "Examples:\n\n\b\n" + "\n".join("  " + line for line in lines)


def _code_option(verify_only: bool = False) -> Any:
    return typer.Option(
        None, "--custom-objects", help="Code the model needs, and permission to run it: an "
        "importable module (keras_hub) or a .py file. It builds models saved as their class "
        "(keras_hub backbones and tasks) so their layers can be seen"
        + (", and loads custom classes for --verify." if verify_only else
           " and loads custom classes when models are run."))


def _unsafe_option(what: str) -> Any:
    return typer.Option(
        False, "--unsafe", help=f"Allow {what} models that run code from the file (Lambda "
        "layers). Only for files you trust.")


def _html_option(when: str) -> Any:
    return typer.Option(
        None, "--html", help=f"With --locate (implied){when}: also write the parent's graph "
        "page (.html) with each layer coloured by its error in the artifact and its row in "
        "the details panel.")


def _bisect_option(when: str) -> Any:
    return typer.Option(
        False, "--bisect", help=f"With --locate (implied){when}: also export ever longer "
        "prefixes of the artifact's layers afresh from the parent and prove each (O(log n) "
        "exports), naming the first layer where a fresh export differs.")


def _save_repro_option(when: str) -> Any:
    return typer.Option(
        None, "--save-repro", help=f"With --locate (implied){when}: write a reduced "
        "reproducer of the first failing layer to this directory: the segment around it "
        "(.keras), the artifact's part (cut out of an .onnx itself, else exported afresh), a "
        "golden .npz and a README of the command that shows the failure.")


def _complete_layers(ctx: typer.Context, incomplete: str) -> list[str]:
    """Tab completion of layer names, read from the MODEL already on the command line."""
    from keras_cut.cli.completion import complete_layer, model_on_command_line

    # while completing, click leaves positional arguments unparsed in ctx.args, and a model
    # typed after the option is not parsed at all
    model = ctx.params.get("model") or next(iter(ctx.args), None) or model_on_command_line()
    return complete_layer(model, incomplete)


def _complete_models(incomplete: str) -> list[str]:
    from keras_cut.cli.completion import complete_model_file

    return complete_model_file(incomplete)

def _complete_columns(incomplete: str) -> list[str]:
    """`--columns class,sh<Tab>`: the column names not yet given, after what is typed."""
    from keras_cut.present.render import COLUMNS

    done, _, last = incomplete.rpartition(",")
    given = set(done.split(",")) if done else set()
    prefix = done + "," if done else ""
    return [prefix + key for key in COLUMNS if key.startswith(last) and key not in given]


# Typer vendors click privately; reach its UsageError through the public BadParameter.
_UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__
                                   if c.__name__ == "UsageError")


# How the command line spells each setting a library error names.
FLAGS = {
    Option.OUTPUT_LAYERS: "--output-layer", Option.INPUT_LAYERS: "--input-layer",
    Option.UNSAFE: "--unsafe", Option.CUSTOM_OBJECTS: "--custom-objects",
    Option.INPUTS: "--inputs", Option.INPUT_SHAPES: "--input-shape", Option.FILTER: "--filter",
    Option.DEPTH: "--depth", Option.SEED: "--seed", Option.SAMPLES: "--samples",
    Option.BATCH_SIZE: "--batch-size", Option.SAVE_GOLDEN: "--save-golden",
    Option.ATOL: "--atol", Option.RTOL: "--rtol", Option.FORCE: "--force",
    Option.VERIFY: "--verify", Option.MIN_COSINE: "--min-cosine", Option.QUANTIZE: "--quantize",
    Option.CALIBRATION: "--calibration", Option.FORMAT: "--format", Option.LOCATE: "--locate",
    Option.HTML: "--html", Option.SAVE_REPRO: "--save-repro", Option.KEEP_FLOAT: "--keep-float",
    Option.BISECT: "--bisect",
}


def flag(option: Option) -> str:
    return FLAGS[option]


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """The one place where keras-cut's errors become `Error: …` and the error's exit code."""
    try:
        yield
    except KerasCutError as exc:
        _progress.stop()
        _fail(exc.text(flag), exc, exc.exit_code)
    except KeyboardInterrupt as exc:
        _progress.stop()
        _fail("interrupted; nothing was written", exc)
    finally:
        _progress.stop()


def _fail(message: str, exc: BaseException | None = None, code: int = 2) -> None:
    if _state["debug"] and exc is not None:
        traceback.print_exception(exc, file=sys.stderr)
    stderr_console().print(f"Error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"keras-cut {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Take saved Keras models apart: inspect them, cut submodels, verify the cuts.

    Exit codes: 0 success, 1 verify found a disagreement, 2 any error.
    """
    _state["debug"] = debug


_INSPECT_EXAMPLES = _examples(
    "keras-cut inspect resnet50.keras",
    "keras-cut inspect resnet50.keras --columns shape,params,macs,memory --filter conv4",
    "keras-cut inspect model.keras --json | jq .total_macs",
    "keras-cut inspect bert.keras --custom-objects keras_hub   # runs keras_hub: its layers",
)


@app.command("inspect", epilog=_INSPECT_EXAMPLES)
def inspect_command(
    model: Path = typer.Argument(..., autocompletion=_complete_models,
                                 help="A .keras or legacy .h5 model file."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
    depth: int | None = typer.Option(
        None, "--depth", min=0, help="Expand nested models to this depth (default: fully)."
    ),
    filter: str | None = typer.Option(
        None, "--filter", autocompletion=_complete_layers,
        help="Show only layers whose path or class matches this regex."
    ),
    layer: str | None = typer.Option(
        None, "--layer", autocompletion=_complete_layers,
        help="Show one layer in detail: config, weights with statistics."
    ),
    columns: str | None = typer.Option(
        None, "--columns", autocompletion=lambda incomplete: _complete_columns(incomplete),
        help="The table's columns, comma-separated, from: class, shape, "
        "params, macs, memory (activation bytes), trainable, connected. Default: class,shape,"
        "params,macs,trainable,connected."),
    custom_objects: str | None = _code_option(),
    unsafe: bool = _unsafe_option("--custom-objects to build"),
) -> None:
    """Show what is in a model file: layers, shapes, params, MACs, nested models, anything unsafe.

    Reads the file without TensorFlow and runs nothing from it. MACs (multiply-accumulates)
    and activation memory are per sample, for one call of each layer; the footer totals every
    call (see the README's "What a model costs" for the conventions).
    """
    with _user_errors():
        if layer is not None:
            detail = inspect_layer(model, layer, custom_objects, unsafe)
            if json_output:
                print_json(detail.to_dict())
            else:
                render_layer(detail, stdout_console())
            return
        chosen = parse_columns(columns)
        report = inspect_model(model, depth=depth, filter=filter, code=custom_objects,
                               unsafe=unsafe)
        if isinstance(report, ClassModelReport):
            if json_output:
                print_json(report.to_dict())
            else:
                render_class_model(report, stdout_console(), depth)
            return
        if report.built_from is not None:
            _notice(f"{model}: built with {report.built_from.code} and read as its functional "
                    "graph (a plain Functional model of the same layers)")
        if not report.cost.macs_known:
            _notice(f"MACs unknown for {len(report.cost.unknown)} layer call(s) "
                    f"({', '.join(report.cost.unknown[:3])}"
                    f"{', ...' if len(report.cost.unknown) > 3 else ''}): keras-cut has no cost "
                    "rule for their class or does not know their shapes; totals are lower "
                    "bounds")
        if json_output:
            print_json(report.to_dict())
        else:
            render_inspect(report, stdout_console(), chosen)


class _Progress:
    """What a long step is doing (loading TensorFlow and a model, each verify batch, writing):
    a live spinner line on stderr, and only on a terminal, so logs, pipes and CI stay clean.
    Stopped before anything else is printed."""

    def __init__(self) -> None:
        self.status: Any = None

    def __call__(self, message: str) -> None:
        if not sys.stderr.isatty():
            return
        if self.status is None:
            self.status = stderr_console().status(f"{message}…", spinner="dots")
            self.status.start()
        else:
            self.status.update(f"{message}…")

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


_progress = _Progress()


def _notice(message: str) -> None:
    _progress.stop()
    stderr_console().print(f"Notice: {message}", markup=False, soft_wrap=True)


_CUT_EXAMPLES = _examples(
    "keras-cut cut resnet50.keras -o features.keras --output-layer conv4_block6_out --freeze",
    "keras-cut cut resnet50.keras -o head.keras --input-layer conv4_block6_out --verify",
    "keras-cut cut model.keras -o part.keras --input-layer backbone/block_5_add "
    "--output-layer pool",
    "keras-cut cut bert.keras -o first4.keras --output-layer transformer_layer_3 "
    "--custom-objects keras_hub",
)


@app.command("cut", epilog=_CUT_EXAMPLES)
def cut_command(
    model: Path = typer.Argument(..., autocompletion=_complete_models,
                                 help="The parent model (.keras or .h5)."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Where to save the submodel; .keras or .h5 sets the format."
    ),
    output_layer: list[str] | None = typer.Option(
        None, "--output-layer", autocompletion=_complete_layers,
        help="End at this layer's output (repeat for several outputs). Paths like "
        "backbone/conv1 reach into nested models; NAME@N picks a call of a shared layer.",
    ),
    input_layer: list[str] | None = typer.Option(
        None, "--input-layer", autocompletion=_complete_layers,
        help="Start after this layer: its output becomes an input (repeatable). Without "
        "--output-layer the submodel ends at the parent's outputs.",
    ),
    freeze: bool = typer.Option(False, "--freeze", help="Make every layer non-trainable."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing OUTPUT."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
    verify: bool = typer.Option(
        False, "--verify", help="Verify the written file against MODEL before it is put at "
        "OUTPUT (same checks and defaults as `keras-cut verify`); if they disagree, exit 1 and "
        "keep the file under another name for examination."
    ),
    unsafe: bool = _unsafe_option("--verify and --custom-objects to load"),
    custom_objects: str | None = _code_option(verify_only=True),
    graph: Path | None = typer.Option(
        None, "--graph", help="Also save a picture of the cut (.svg/.png/.pdf need Graphviz; "
        ".dot/.mmd/.html need nothing); --force applies to it too."),
) -> None:
    """Save a submodel: inputs to named layers, a layer to the end, or a segment between.

    The submodel file is written from MODEL's file: kept layers' configs are copied and
    rewired, their arrays copied bit for bit. Nothing from the file runs and TensorFlow is not
    loaded (except for --verify). Tensors from before the cut that are still needed after it
    (skip connections) become extra inputs, listed in order. The write is atomic, never touches
    MODEL, and never replaces OUTPUT without --force.
    """
    from keras_cut.cut.cutting import cut_model

    with _user_errors():
        if graph is not None:
            from keras_cut.core.writing import check_output
            from keras_cut.present.pictures import GRAPH_FORMATS

            check_output(graph, model, force, GRAPH_FORMATS, (output,))
        result = cut_model(
            model, output, output_layer or [], input_layer or [], freeze=freeze, force=force,
            progress=_progress, verify=verify, unsafe=unsafe, custom_objects=custom_objects,
        )
        _progress.stop()
        for note in result.notices + result.needs:
            _notice(note)
        if graph is not None:
            from keras_cut.draw.drawing import draw_model
            from keras_cut.present.pictures import write_picture

            write_picture(draw_model(model, output_layer, input_layer, code=custom_objects,
                                     unsafe=unsafe), graph)
            _notice(f"picture of the cut: {graph}")
        _report_cut(result, json_output)
    if result.verify is not None and not result.verify.passed:
        raise typer.Exit(1)


def _report_cut(result: Any, json_output: bool) -> None:
    """A cut's (or a conversion's) result: verify's notices, then the table or the JSON."""
    report = result.verify
    if report is not None:
        for note in report.notices:
            _notice(note)
    if json_output:
        print_json(result.to_dict())
        return
    render_cut(result, stdout_console())
    if report is not None:
        stdout_console().print()
        render_verify(report, stdout_console())


_CONVERT_EXAMPLES = _examples(
    "keras-cut convert old_tf2_model.h5 -o model.keras",
    "keras-cut convert old_tf2_model.h5 -o model.keras --verify",
    "keras-cut convert model.keras -o model.h5 --force",
)


@app.command("convert", epilog=_CONVERT_EXAMPLES)
def convert_command(
    model: Path = typer.Argument(..., autocompletion=_complete_models,
                                 help="The model to rewrite (.keras or .h5, tf.keras 2 too)."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Where to write it; .keras or .h5 sets the format."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing OUTPUT."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
    verify: bool = typer.Option(
        False, "--verify", help="Check OUTPUT against MODEL before it is put in place (as "
        "`keras-cut verify`); if they disagree, exit 1 and keep the file under another name."),
    unsafe: bool = _unsafe_option("--verify and --custom-objects to load"),
    custom_objects: str | None = _code_option(verify_only=True),
) -> None:
    """Rewrite a whole model as a clean file: a tf.keras 2 .h5 becomes a Keras 3 .keras.

    The same file-level writer as `cut`, keeping every layer: configs copied with keras-cut's
    legacy normalisations applied (each one listed), arrays copied bit for bit into Keras 3's
    layout, so OUTPUT loads in plain Keras 3 with keras.saving.load_model. Nothing from the
    file runs and TensorFlow is not loaded (except for --verify). Same safety as `cut`.
    """
    from keras_cut.cut.cutting import convert_model

    with _user_errors():
        result = convert_model(model, output, force=force, progress=_progress, verify=verify,
                               unsafe=unsafe, custom_objects=custom_objects)
        _progress.stop()
        for note in result.notices + result.needs:
            _notice(note)
        _report_cut(result, json_output)
    if result.verify is not None and not result.verify.passed:
        raise typer.Exit(1)


_GRAPH_EXAMPLES = _examples(
    "keras-cut graph resnet50.keras -o resnet50.svg",
    "keras-cut graph resnet50.keras -o cut.svg --input-layer conv4_block1_out",
    "keras-cut graph model.keras -o model.mmd --depth 0",
    "keras-cut graph resnet50.keras -o resnet50.html",
)


@app.command("graph", epilog=_GRAPH_EXAMPLES)
def graph_command(
    model: Path = typer.Argument(..., autocompletion=_complete_models,
                                 help="The model file (.keras or .h5)."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="The picture: .svg, .png, .pdf (Graphviz), .dot (Graphviz "
        "source), .mmd (Mermaid, which GitHub renders in Markdown) or .html (one interactive "
        "page: pan, zoom, search, details and cut commands; needs nothing)."),
    output_layer: list[str] | None = typer.Option(
        None, "--output-layer", autocompletion=_complete_layers,
        help="Show the cut that ends here (as `cut`; repeatable)."),
    input_layer: list[str] | None = typer.Option(
        None, "--input-layer", autocompletion=_complete_layers,
        help="Show the cut that starts after this layer (as `cut`)."),
    depth: int | None = typer.Option(
        None, "--depth", min=0, help="Draw nested models this deep; deeper ones become one "
        "node per call (0: only the top level)."),
    filter: str | None = typer.Option(
        None, "--filter", autocompletion=_complete_layers,
        help="Only layers whose path or class matches this regular expression."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing OUTPUT."),
    json_output: bool = typer.Option(
        False, "--json", help="Also print one JSON document: every node drawn (name, class, "
        "shape, params, role), edge and nested-model cluster."),
    custom_objects: str | None = _code_option(),
    unsafe: bool = _unsafe_option("--custom-objects to build"),
) -> None:
    """Draw the layer graph, and with cut options what that cut keeps.

    One node per layer call (name, class, output shape, params), nested models as clusters.
    With --output-layer/--input-layer (same meaning, names and errors as `cut`): kept,
    dropped, cut-point inputs, tensors crossing the cut (extra inputs) and outputs are drawn
    distinctly, with a legend. No model is written and TensorFlow is not loaded.
    """
    from keras_cut.core.writing import check_output
    from keras_cut.draw.drawing import draw_model
    from keras_cut.present.pictures import GRAPH_FORMATS, write_picture

    with _user_errors():
        check_output(output, model, force, GRAPH_FORMATS)
        drawing = draw_model(model, output_layer, input_layer, depth, filter,
                             code=custom_objects, unsafe=unsafe)
        write_picture(drawing, output)
        kept = sum(n.role in ("kept", "output") for n in drawing.nodes) if drawing.cut else None
        count = len(drawing.nodes)
        what = f"{count} layer call{'' if count == 1 else 's'}" + (
            f", {kept} kept by the cut" if kept is not None else "")
        _notice(f"drew {what}: {output}")
        if json_output:
            print_json({"output": str(output), **drawing.to_dict()})


_VERIFY_EXAMPLES = _examples(
    "keras-cut verify resnet50.keras features.keras",
    "keras-cut verify model.keras head.keras --atol 1e-4 --atol logits=1e-3 --json",
    "keras-cut verify model.keras sub.keras --save-golden sub.golden.npz",
    "keras-cut verify sub.golden.npz sub.keras   # later, in CI: no parent needed",
)


@app.command("verify", epilog=_VERIFY_EXAMPLES)
def verify_command(
    parent: Path = typer.Argument(
        ..., autocompletion=_complete_models, help="The parent model the submodel was cut "
        "from, or a golden file (.npz) written by --save-golden."),
    submodel: Path = typer.Argument(..., autocompletion=_complete_models,
                                    help="The submodel to check: a model file, or an artifact "
                                    "`export` wrote (.tflite, .onnx, .xml, a SavedModel "
                                    "directory), run in its own runtime."),
    samples: int = typer.Option(32, "--samples", min=1, help="How many input samples to run."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Samples per inference."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random inputs."),
    atol: list[str] | None = typer.Option(
        None, "--atol", help="Absolute tolerance (default 1e-5), or NAME=VALUE for one output "
        "(repeatable)."),
    rtol: list[str] | None = typer.Option(
        None, "--rtol", help="Relative tolerance (default 1e-5), or NAME=VALUE for one output "
        "(repeatable)."),
    inputs: Path | None = typer.Option(
        None, "--inputs", help="Real data: an .npz with one array per parent input, by name."
    ),
    input_shape: list[str] | None = typer.Option(
        None, "--input-shape", help="NAME=D1,D2,… for inputs with unknown (None) dimensions."
    ),
    min_cosine: list[str] | None = typer.Option(
        None, "--min-cosine", help="Judge by cosine similarity instead of atol/rtol: the least "
        "an output must reach, or NAME=VALUE for one output (repeatable); a quantized artifact "
        "is judged so by default, by the value its export used."),
    save_golden: Path | None = typer.Option(
        None, "--save-golden", help="Also write a golden file (.npz): the inputs used and the "
        "parent's answers, to check SUBMODEL later without the parent."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --save-golden "
                               "or --html file, or replace a --save-repro directory."),
    unsafe: bool = _unsafe_option("loading"),
    custom_objects: str | None = _code_option(),
    locate: bool = typer.Option(
        False, "--locate", help="For an artifact (.tflite, .onnx, .xml): also run it with "
        "every intermediate tensor kept and compare each with the parent's Keras layer it "
        "stands for, naming the first layer past tolerance."),
    html: Path | None = _html_option(""),
    bisect: bool = _bisect_option(""),
    save_repro: Path | None = _save_repro_option(""),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Prove SUBMODEL computes what PARENT computes at the same layers.

    Runs both on the same seeded random (or given) inputs: the parent's activations at the
    submodel's inputs feed the submodel, and its activations at the submodel's outputs are the
    reference. An output passes when every value satisfies |sub - parent| <= atol +
    rtol*|parent| with the same shape and dtype; every kept weight must also be bit-identical.
    When an output fails, every kept layer is compared on the failing batch and the first one
    that diverges is named.
    Random inputs: floats uniform in [-1, 1); integers feeding an Embedding in [0, input_dim),
    other integers in [0, 100); unknown dimensions 8 unless --input-shape.
    With a golden file as PARENT, the stored inputs, answers, tolerances and weight hashes
    are used and no parent model is opened.
    Exit 0 when everything agrees, 1 when anything disagrees, 2 on an error.
    """
    from keras_cut.cli.options import parse_input_shapes, parse_tolerances
    from keras_cut.verify.verification import verify_models

    with _user_errors():
        locate = _check_located_outputs(html, save_repro, bisect, parent, submodel, force,
                                        (save_golden,)) or locate
        report = verify_models(
            parent, submodel, samples=samples, batch_size=batch_size, seed=seed,
            inputs=inputs, input_shapes=parse_input_shapes(input_shape or []),
            unsafe=unsafe, custom_objects=custom_objects, progress=_progress,
            tolerances=parse_tolerances(atol, rtol, min_cosine), save_golden=save_golden,
            force=force, locate=locate,
        )
        repro = _located_outputs(html, save_repro, parent, submodel, report, unsafe,
                                 custom_objects)
        bisection = _bisect(bisect, parent, submodel, report, _bisect_settings(
            unsafe=unsafe, custom_objects=custom_objects, inputs=inputs, seed=seed,
            samples=samples, input_shapes=parse_input_shapes(input_shape or [])))
        for note in report.notices:
            _notice(note)
        if report.saved_golden:
            _notice(f"golden file written: {report.saved_golden}")
        if json_output:
            print_json(report.to_dict() | _located_json(repro, bisection))
        else:
            render_verify(report, stdout_console())
            _render_located(repro, bisection)
    if not report.passed:
        raise typer.Exit(1)


def _bisect(wanted: bool, parent: Path, artifact: Path, report: Any, settings: Any) -> Any:
    """--bisect: fresh exports of ever longer prefixes, where --locate ran and found the
    artifact differs."""
    location = report.locate if report is not None else None
    if not wanted or location is None:
        return None
    if report.passed and location.first is None:
        _notice("the artifact agrees with its parent: there is nothing to bisect")
        return None
    from keras_cut.backend.runtime import artifact_format
    from keras_cut.export.bisect import bisect_prefixes

    fmt = artifact_format(artifact)
    found = bisect_prefixes(parent, fmt or "", location, settings, _progress) if fmt else None
    _progress.stop()
    return found


def _bisect_settings(**given: Any) -> Any:
    """How --bisect exports and proves each prefix: as the run that located the artifact."""
    from keras_cut.export.bisect import Settings

    return Settings(**given)


def _located_json(repro: Any, bisection: Any) -> dict[str, Any]:
    return ({"repro": repro.to_dict()} if repro else {}) | \
        ({"bisect": bisection.to_dict()} if bisection else {})


def _render_located(repro: Any, bisection: Any) -> None:
    from keras_cut.present.verify_view import render_bisection, render_repro

    if repro is not None:
        render_repro(repro, stdout_console())
    if bisection is not None:
        render_bisection(bisection, stdout_console())


def _check_located_outputs(html: Path | None, repro: Path | None, bisect: bool, parent: Path,
                           artifact: Path, force: bool, others: tuple[Path | None, ...] = (),
                           proven: bool = True) -> bool:
    """--html, --save-repro and --bisect: refused before anything runs where they cannot
    apply or writing them would lose data (`others`: the command's other outputs; `proven`:
    export's proof is on); True when one is asked for (each implies --locate)."""
    from keras_cut.backend.runtime import artifact_format
    from keras_cut.core.errors import Option, UsageError

    for given, option in ((html, Option.HTML), (repro, Option.SAVE_REPRO),
                          (bisect or None, Option.BISECT)):
        if given is None:
            continue
        if artifact_format(artifact) not in ("litert", "onnx", "openvino"):
            raise UsageError(option, " compares the layers inside an artifact (.tflite, "
                             f".onnx, .xml) with its parent's; {artifact} is not one")
        if parent.suffix.lower() == ".npz":
            raise UsageError(option, " compares with the parent's layers: give the parent "
                             "model, not a golden file")
        if not proven:
            raise UsageError(option, " looks inside an artifact whose proof failed, so it "
                             "needs the proof: leave ", Option.VERIFY, " on")
    if html is not None:
        from keras_cut.core.writing import check_output

        check_output(html, parent, force, {".html": "html"}, (artifact,))
    if repro is not None:
        from keras_cut.export.repro import check_repro_dir

        check_repro_dir(repro, force, (parent, artifact))
        inside = [p for p in (html, *others) if p is not None and
                  (repro.resolve() == p.resolve().parent or repro.resolve() in
                   p.resolve().parents)]
        if inside:
            raise UsageError(Option.SAVE_REPRO, f" {repro}: would replace {inside[0]}, another "
                             "output of this command; write it elsewhere")
    return html is not None or repro is not None or bisect


def _located_outputs(html: Path | None, directory: Path | None, parent: Path, artifact: Path,
                     report: Any, unsafe: bool, custom_objects: str | None) -> Any:
    """What --html and --save-repro write of what --locate found, once the report is in;
    the reproducer written, if any."""
    location = report.locate if report is not None else None
    repro = None
    if directory is not None and location is not None:
        from keras_cut.backend.runtime import artifact_format
        from keras_cut.export.repro import save_repro

        fmt = artifact_format(artifact)
        repro = save_repro(directory, parent, artifact, fmt or "", location, unsafe,
                           custom_objects, _progress, force=True) if fmt else None
    _progress.stop()
    if directory is not None and repro is None:
        _notice("the artifact agrees with the parent at every layer compared: no reproducer "
                "was written")
    if html is not None and location is not None:
        from keras_cut.present.htmlpage import write_located_page

        write_located_page(parent, location, html, custom_objects, unsafe)
        _notice(f"graph page with the comparison written: {html}")
    elif html is not None:
        _notice("the artifact's proof passed, so nothing was located: no page was written")
    return repro


_EXPORT_EXAMPLES = _examples(
    "keras-cut export mobilenet.keras -o features.tflite --output-layer block_13_expand_relu",
    "keras-cut export model.keras -o head.onnx --input-layer res_b --json",
    "keras-cut export model.keras -o model.onnx   # the whole model, proven in ONNX Runtime",
    "keras-cut export model.keras -o backbone.xml --output-layer pool   # OpenVINO IR + .bin",
    "keras-cut export model.keras -o serving/1 --output-layer pool   # a SavedModel directory",
)


@app.command("export", epilog=_EXPORT_EXAMPLES)
def export_command(
    model: Path = typer.Argument(..., autocompletion=_complete_models,
                                 help="The parent model (.keras or .h5)."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Where to write the artifact: .tflite (LiteRT), .onnx, "
        ".xml (OpenVINO IR) or a directory name without a suffix (TensorFlow SavedModel)."),
    output_layer: list[str] | None = typer.Option(
        None, "--output-layer", autocompletion=_complete_layers,
        help="End at this layer's output (repeatable), as `cut`."),
    input_layer: list[str] | None = typer.Option(
        None, "--input-layer", autocompletion=_complete_layers,
        help="Start after this layer (repeatable), as `cut`. Without layer options the whole "
        "model is exported."),
    format: str | None = typer.Option(
        None, "--format", help="litert, onnx, openvino or tf_saved_model; by default OUTPUT's "
        "name decides: .tflite, .onnx, .xml (with a .bin beside it), no suffix: a SavedModel "
        "directory."),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Prove the artifact in its own runtime against "
        "MODEL before it is put at OUTPUT (default); if they differ, exit 1 and keep it under "
        "another name."),
    samples: int = typer.Option(32, "--samples", min=1, help="How many input samples to run."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Samples per inference."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random inputs."),
    atol: list[str] | None = typer.Option(
        None, "--atol", help="Absolute tolerance (default 1e-5), or NAME=VALUE for one output "
        "(repeatable)."),
    rtol: list[str] | None = typer.Option(
        None, "--rtol", help="Relative tolerance (default 1e-5), or NAME=VALUE for one output "
        "(repeatable)."),
    inputs: Path | None = typer.Option(
        None, "--inputs", help="Real data: an .npz with one array per parent input, by name."),
    input_shape: list[str] | None = typer.Option(
        None, "--input-shape", help="NAME=D1,D2,… for inputs with unknown (None) dimensions."),
    quantize: str | None = typer.Option(
        None, "--quantize", help="float16, dynamic or int8 (.tflite); dynamic (.onnx); float16 "
        "(.xml). A quantized artifact is judged by cosine similarity (--min-cosine), not "
        "atol/rtol."),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="Real samples for int8: an .npz with arrays by parent input "
        "name (default: seeded inputs, a poor proxy)."),
    min_cosine: list[str] | None = typer.Option(
        None, "--min-cosine", help="Least cosine similarity a quantized output must reach "
        "(default 0.99), or NAME=VALUE for one output (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing OUTPUT (a "
                               "directory only when it is a SavedModel), --html file or "
                               "--save-repro directory."),
    unsafe: bool = _unsafe_option("loading"),
    custom_objects: str | None = _code_option(),
    locate: bool = typer.Option(
        False, "--locate", help="When the proof fails (.tflite, .onnx, .xml): find the first "
        "Keras layer whose artifact tensor leaves the parent's (as verify --locate)."),
    keep_float: list[str] | None = typer.Option(
        None, "--keep-float", autocompletion=_complete_layers,
        help="With --quantize int8 (.tflite): leave this layer's operations in float "
        "(repeatable); --locate suggests which."),
    html: Path | None = _html_option(", when the proof fails"),
    bisect: bool = _bisect_option(", when the proof fails"),
    save_repro: Path | None = _save_repro_option(", when the proof fails"),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Write the cut (or the whole model) as a LiteRT, ONNX, OpenVINO or SavedModel artifact,
    proven in its runtime.

    The cut is the file-level cut `cut` makes (same names, notices and safety rules); Keras
    loads it (safe mode, compile=False) and exports it with its own exporter. Then the artifact
    runs in its own runtime (LiteRT's interpreter, ONNX Runtime, OpenVINO Runtime, TensorFlow's
    SavedModel loader) on the inputs `verify` uses,
    and its outputs are compared with the parent's activations at the cut points, with the
    same tolerances and table. Only a proven artifact is written to OUTPUT.
    Exit 0 when proven (or not asked to be), 1 when it differs, 2 on an error.
    """
    from keras_cut.cli.options import parse_input_shapes, parse_tolerances
    from keras_cut.export.exporting import export_model
    from keras_cut.present.render import render_export

    with _user_errors():
        locate = _check_located_outputs(html, save_repro, bisect, model, output, force,
                                        proven=verify) or locate
        result = export_model(
            model, output, output_layer or [], input_layer or [], format=format, verify=verify,
            tolerances=parse_tolerances(atol, rtol, min_cosine), samples=samples,
            batch_size=batch_size, seed=seed, inputs=inputs,
            input_shapes=parse_input_shapes(input_shape or []), force=force, unsafe=unsafe,
            custom_objects=custom_objects, progress=_progress, quantize=quantize,
            calibration=calibration, locate=locate, keep_float=keep_float or [])
        _progress.stop()
        for note in result.notices + result.cut.needs + \
                (result.verify.notices if result.verify else []):
            _notice(note)
        repro = _located_outputs(html, save_repro, model, Path(result.output), result.verify,
                                 unsafe, custom_objects)
        bisection = _bisect(bisect, model, Path(result.output), result.verify, _bisect_settings(
            unsafe=unsafe, custom_objects=custom_objects, inputs=inputs, seed=seed,
            samples=samples, input_shapes=parse_input_shapes(input_shape or []),
            calibration=calibration, keep_float=keep_float or []))
        if json_output:
            print_json(result.to_dict() | _located_json(repro, bisection))
        else:
            render_export(result, stdout_console())
            _render_located(repro, bisection)
    if result.proven is False:
        raise typer.Exit(1)


_DIFF_EXAMPLES = _examples(
    "keras-cut diff model.keras retrained.keras",
    "keras-cut diff model.h5 model.keras --structure-only",
    "keras-cut diff base.keras tuned.keras --atol 1e-6 --json",
)


@app.command("diff", epilog=_DIFF_EXAMPLES)
def diff_command(
    a: Path = typer.Argument(..., autocompletion=_complete_models,
                             help="The first model file (old)."),
    b: Path = typer.Argument(..., autocompletion=_complete_models,
                             help="The second model file (new)."),
    structure_only: bool = typer.Option(
        False, "--structure-only", help="Compare layers, connections, configs and array "
        "shapes, not array values."),
    atol: float = typer.Option(
        0.0, "--atol", help="Treat array values that differ by at most this (a finite number "
        ">= 0) as equal; NaN and infinities that differ always count."),
    ignore: list[str] = typer.Option(
        [], "--ignore", metavar="KIND", help="Report differences of this kind but still exit 0 "
        "for them: metadata (names, versions, compile settings), bits (equal values in other "
        "bit patterns), safety (class origins, zip members and arrays Keras does not read), "
        "behaviour. Repeatable.", autocompletion=lambda: [k.value for k in ChangeKind]),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
    custom_objects: str | None = _code_option(),
    unsafe: bool = _unsafe_option("--custom-objects to build"),
) -> None:
    """What changed between two model files: structure, configs, weights.

    Layers are matched by name, then by graph order and class (renamed layers); nested
    models are compared layer by layer. For each matched layer: class, inputs, the config
    fields that differ (old -> new), and every stored array (shape, dtype, values: max and
    mean absolute difference, fraction of elements changed). Nothing from either file runs.
    Exit 0 when identical (under the options), 1 when different, 2 on an error.
    """
    from keras_cut.diff.diffing import diff_models

    with _user_errors():
        if not math.isfinite(atol) or atol < 0:
            raise UsageError(f"--atol {atol}: a tolerance is a finite number >= 0")
        kinds = {k.value: k for k in ChangeKind}
        unknown = [k for k in ignore if k not in kinds]
        if unknown:
            raise UsageError(f"--ignore {unknown[0]!r}: a kind is one of {', '.join(kinds)}")
        report = diff_models(a, b, structure_only=structure_only, atol=atol,
                             code=custom_objects, unsafe=unsafe,
                             ignore={kinds[k] for k in ignore})
        if json_output:
            print_json(report.to_dict())
        else:
            render_diff(report, stdout_console())
    if not report.identical:
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (console script and `python -m keras_cut`)."""
    try:
        result = app(args=argv, prog_name="keras-cut", standalone_mode=False)
    except _UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help(), err=True)
            return 2
        command = ctx.command_path if ctx is not None else "keras-cut"
        stderr_console().print(
            f"Error: {getattr(exc, 'format_message', exc.__str__)()} (see '{command} --help')",
            markup=False,
            soft_wrap=True,
        )
        return 2
    except typer.Abort:
        stderr_console().print("Error: interrupted; nothing was written", markup=False)
        return 2
    return result if isinstance(result, int) else 0


def run() -> None:
    """The console script and `python -m keras_cut`: `main`, then the exit. With TensorFlow
    loaded, the exit skips the interpreter's teardown of it (about a second): output is
    flushed and every exit handler runs first, so nothing a command wrote is lost."""
    code = main()
    if "tensorflow" not in sys.modules:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing left to say there
            stream.flush()
    atexit._run_exitfuncs()
    os._exit(code)

