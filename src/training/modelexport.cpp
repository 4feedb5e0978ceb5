// The torch-free half of exporting: the sidecar files. See modelexport.h.

#include "training/modelexport.h"

#include "base/jsonwriter.h"

#include <optional>

namespace ifs {

QString exportFormatName(ExportFormat format)
{
    return format == ExportFormat::Onnx ? QStringLiteral("onnx") : QStringLiteral("torchscript");
}

QByteArray labelsJson(const QStringList &classes)
{
    JsonWriter json(2);
    json.beginObject();
    json.key("classes").beginArray();
    for (const QString &name : classes)
        json.value(name);
    json.endArray();
    json.key("class_to_idx").beginObject();
    for (qsizetype i = 0; i < classes.size(); ++i)
        json.key(classes[i].toStdString()).value(int64_t(i));
    json.endObject();
    json.endObject();
    return json.take() + '\n';
}

namespace {

/// The argument `name` of a normalised step: positional at `index` (required parameters), else
/// a keyword; nullopt when it was left at its default.
std::optional<TransformValue> argument(const TransformStep &step, const QString &name, int index)
{
    for (qsizetype i = 0; i < step.args.size(); ++i) {
        const TransformArgument &arg = step.args[i];
        if (arg.keyword == name || (arg.keyword.isEmpty() && i == index))
            return arg.value;
    }
    return std::nullopt;
}

bool isSequence(const TransformValue &v)
{
    return v.kind == TransformValue::Kind::Tuple || v.kind == TransformValue::Kind::List;
}

/// An int or a sequence of one or two ints as [h, w]; empty when it is something else.
QList<qint64> sizePair(const TransformValue &v)
{
    if (v.kind == TransformValue::Kind::Int)
        return {v.intValue, v.intValue};
    if (!isSequence(v) || v.items.isEmpty() || v.items.size() > 2)
        return {};
    QList<qint64> out;
    for (const TransformValue &item : v.items) {
        if (item.kind != TransformValue::Kind::Int)
            return {};
        out.append(item.intValue);
    }
    if (out.size() == 1)
        out.append(out.first());
    return out;
}

void numbers(JsonWriter &json, const TransformValue &v)
{
    json.beginArray();
    for (const TransformValue &item : v.items)
        json.value(item.kind == TransformValue::Kind::Int ? double(item.intValue)
                                                          : item.floatValue);
    json.endArray();
}

/// Writes one expressible step; false when the step cannot be written as data.
bool writeStep(JsonWriter &json, const TransformStep &step)
{
    const QString &name = step.name;
    if (name == u"Resize") {
        const TransformValue size
            = argument(step, QStringLiteral("size"), 0).value_or(TransformValue::none());
        const bool shorter = size.kind == TransformValue::Kind::Int
            || (isSequence(size) && size.items.size() == 1);
        const QList<qint64> pair = sizePair(size);
        if (pair.isEmpty())
            return false;
        const TransformValue interpolation
            = argument(step, QStringLiteral("interpolation"), -1)
                  .value_or(TransformValue::interpolation(QStringLiteral("BILINEAR")));
        const std::optional<TransformValue> maxSize
            = argument(step, QStringLiteral("max_size"), -1);
        json.beginObject();
        json.key("op").value("resize");
        if (shorter)
            json.key("shorter_side").value(int64_t(pair[0]));
        else
            json.key("size")
                .beginArray()
                .value(int64_t(pair[0]))
                .value(int64_t(pair[1]))
                .endArray();
        json.key("interpolation").value(interpolation.text.toLower());
        json.key("max_size");
        if (maxSize && maxSize->kind == TransformValue::Kind::Int)
            json.value(int64_t(maxSize->intValue));
        else
            json.null();
        json.key("antialias").value(true); // PIL's resampling, as torchvision's PIL path
        json.endObject();
        return true;
    }
    if (name == u"CenterCrop") {
        const QList<qint64> pair
            = sizePair(argument(step, QStringLiteral("size"), 0).value_or(TransformValue::none()));
        if (pair.isEmpty())
            return false;
        json.beginObject().key("op").value("center_crop");
        json.key("size").beginArray().value(int64_t(pair[0])).value(int64_t(pair[1])).endArray();
        json.endObject();
        return true;
    }
    if (name == u"Grayscale") {
        const TransformValue channels = argument(step, QStringLiteral("num_output_channels"), -1)
                                            .value_or(TransformValue::integer(1));
        json.beginObject().key("op").value("grayscale");
        json.key("channels").value(int64_t(channels.intValue)).endObject();
        return true;
    }
    if (name == u"ToTensor") {
        json.beginObject().key("op").value("to_tensor").key("scale").value(1.0 / 255.0);
        json.endObject();
        return true;
    }
    if (name == u"Normalize") {
        const std::optional<TransformValue> mean = argument(step, QStringLiteral("mean"), 0);
        const std::optional<TransformValue> std = argument(step, QStringLiteral("std"), 1);
        if (!mean || !std || !isSequence(*mean) || !isSequence(*std))
            return false;
        json.beginObject().key("op").value("normalize");
        json.key("mean");
        numbers(json, *mean);
        json.key("std");
        numbers(json, *std);
        json.endObject();
        return true;
    }
    return false;
}

} // namespace

Result<QByteArray> preprocessingJson(const QString &source, QStringList *warnings)
{
    auto pipeline = parseTransforms(source);
    if (!pipeline)
        return Error{QStringLiteral("the val transforms: ") + pipeline.errorMessage()};
    QStringList notes;
    JsonWriter json(2);
    json.beginObject();
    json.key("color").value("RGB"); // torchvision's ImageFolder loader: PIL convert("RGB")
    json.key("steps").beginArray();
    bool tensor = false;
    for (const TransformStep &step : pipeline->steps) {
        if (!writeStep(json, step))
            notes.append(QStringLiteral("the val transform %1 cannot be written in "
                                        "preprocessing.json: apply the “torchvision” source")
                             .arg(step.name));
        else if (step.name == u"ToTensor")
            tensor = true;
    }
    json.endArray();
    if (!tensor)
        notes.append(QStringLiteral("the val transforms have no ToTensor: preprocessing.json "
                                    "cannot say how the image becomes a tensor"));
    json.key("layout").value("NCHW");
    json.key("dtype").value("float32");
    json.key("torchvision").value(toTorchvisionSource(pipeline.value()));
    json.key("warnings").beginArray();
    for (const QString &note : notes)
        json.value(note);
    json.endArray();
    json.endObject();
    if (warnings)
        *warnings += notes;
    return QByteArray(json.take() + '\n');
}

QByteArray predictPyText(ExportFormat format)
{
    const bool onnx = format == ExportFormat::Onnx;
    QByteArray text = QByteArrayLiteral(
        "\"\"\"Classify images with the exported model only (written by ImageFolder Studio).\n"
        "\n"
        "    python3 predict.py IMAGE...\n"
        "\n"
        "Needs PIL, numpy and ");
    text += onnx ? "onnxruntime" : "torch (no torchvision)";
    text += QByteArrayLiteral(
        "; reads labels.json and preprocessing.json beside it.\n"
        "\"\"\"\n"
        "import json\n"
        "import os\n"
        "import sys\n"
        "\n"
        "import numpy as np\n"
        "from PIL import Image\n"
        "\n"
        "HERE = os.path.dirname(os.path.abspath(__file__))\n"
        "FILTERS = {'nearest': Image.NEAREST, 'nearest_exact': Image.NEAREST,\n"
        "           'bilinear': Image.BILINEAR, 'bicubic': Image.BICUBIC, 'box': Image.BOX,\n"
        "           'hamming': Image.HAMMING, 'lanczos': Image.LANCZOS}\n"
        "\n"
        "\n"
        "def resize(img, step):\n"
        "    w, h = img.size\n"
        "    if 'size' in step:\n"
        "        nh, nw = step['size']\n"
        "    else:  # the shorter side, as torchvision's Resize(int)\n"
        "        size, max_size = step['shorter_side'], step.get('max_size')\n"
        "        short, long = (w, h) if w <= h else (h, w)\n"
        "        if short == size and not max_size:\n"
        "            return img\n"
        "        new_short, new_long = size, int(size * long / short)\n"
        "        if max_size and new_long > max_size:\n"
        "            new_short, new_long = int(max_size * new_short / new_long), max_size\n"
        "        nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)\n"
        "    return img.resize((nw, nh), FILTERS[step['interpolation']])\n"
        "\n"
        "\n"
        "def center_crop(img, step):\n"
        "    ch, cw = step['size']\n"
        "    w, h = img.size\n"
        "    if cw > w or ch > h:  # torchvision pads with zeros first\n"
        "        padded = Image.new(img.mode, (max(w, cw), max(h, ch)))\n"
        "        padded.paste(img, ((max(w, cw) - w) // 2, (max(h, ch) - h) // 2))\n"
        "        img, (w, h) = padded, padded.size\n"
        "    top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))\n"
        "    return img.crop((left, top, left + cw, top + ch))\n"
        "\n"
        "\n"
        "def preprocess(path, spec):\n"
        "    img = Image.open(path).convert(spec['color'])\n"
        "    x = None\n"
        "    for step in spec['steps']:\n"
        "        op = step['op']\n"
        "        if op == 'resize':\n"
        "            img = resize(img, step)\n"
        "        elif op == 'center_crop':\n"
        "            img = center_crop(img, step)\n"
        "        elif op == 'grayscale':\n"
        "            img = img.convert('L')\n"
        "            if step['channels'] == 3:\n"
        "                img = Image.merge('RGB', (img, img, img))\n"
        "        elif op == 'to_tensor':\n"
        "            x = np.asarray(img, dtype=np.float32) * np.float32(step['scale'])\n"
        "            x = x[:, :, None] if x.ndim == 2 else x\n"
        "            x = np.ascontiguousarray(x.transpose(2, 0, 1))\n"
        "        elif op == 'normalize':\n"
        "            mean = np.asarray(step['mean'], dtype=np.float32)[:, None, None]\n"
        "            std = np.asarray(step['std'], dtype=np.float32)[:, None, None]\n"
        "            x = (x - mean) / std\n"
        "    return x\n"
        "\n"
        "\n"
        "def main(paths):\n"
        "    with open(os.path.join(HERE, 'labels.json')) as f:\n"
        "        classes = json.load(f)['classes']\n"
        "    with open(os.path.join(HERE, 'preprocessing.json')) as f:\n"
        "        spec = json.load(f)\n");
    if (onnx) {
        text += QByteArrayLiteral(
            "    import onnxruntime\n"
            "    session = onnxruntime.InferenceSession(os.path.join(HERE, 'model.onnx'))\n"
            "    for path in paths:\n"
            "        x = preprocess(path, spec)[None]\n"
            "        out = session.run(None, {'input': x})[0][0]\n"
            "        if session.get_outputs()[0].name == 'logits':\n"
            "            out = np.exp(out - out.max())\n"
            "            out /= out.sum()\n"
            "        best = np.argsort(-out)[:5]\n");
    } else {
        text += QByteArrayLiteral(
            "    import torch\n"
            "    model = torch.jit.load(os.path.join(HERE, 'model.pt'), map_location='cpu')\n"
            "    model.eval()\n"
            "    for path in paths:\n"
            "        x = torch.from_numpy(preprocess(path, spec))[None]\n"
            "        with torch.no_grad():\n"
            "            out = model(x).softmax(1)[0].numpy()\n"
            "        best = np.argsort(-out)[:5]\n");
    }
    text += QByteArrayLiteral(
        "        print(path + ': ' + ', '.join('%s %.1f%%' % (classes[i], 100 * out[i]) "
        "for i in best))\n"
        "\n"
        "\n"
        "if __name__ == '__main__':\n"
        "    main(sys.argv[1:])\n");
    return text;
}

} // namespace ifs
