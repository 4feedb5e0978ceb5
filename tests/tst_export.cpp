// Export against real PyTorch, ONNX and OpenCV (tests/tools/export_oracle.py): every
// architecture's TorchScript file runs in torch.jit.load as torchvision's model with the same
// weights (1e-5), its ONNX file passes onnx.checker and runs in cv2.dnn (1e-4); the sidecars
// reproduce the val pipeline with PIL; a torchvision checkpoint exports through the CLI; and a
// wrong weight is reported as a mismatch.
#include "testutil.h"

#include "dataset/sampledata.h"
#include "torch/runtime.h"
#include "training/modelexport.h"
#include "training/models.h"
#include "training/trainingdata.h"
#include "transforms/torchrng.h"
#include "transforms/transforms.h"

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMap>
#include <QTemporaryDir>
#include <QtTest>

using namespace ifs;
using namespace Qt::StringLiterals;

namespace {

const QString kTransform
    = u"transforms.Compose([transforms.Resize((64, 64)), transforms.ToTensor(), "
      "transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])"_s;
const QStringList kClasses = {u"ankle"_s, u"bag"_s, u"coat"_s, u"dress"_s, u"shirt"_s};

} // namespace

class TstExport : public QObject
{
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_data;
    QStringList m_images; ///< a few val images

    /// torchvision's `arch` with random values in every tensor a fresh model holds constant
    /// (training_oracle.py theirs), saved as a bare state dict.
    QString torchvisionCheckpoint(const QString &arch, const QString &transform, int seed = 0)
    {
        const QString spec = m_dir.filePath(u"spec-%1.json"_s.arg(arch));
        const QJsonObject json{{u"transform"_s, transform},
                               {u"images"_s, QJsonArray::fromStringList(m_images)}};
        if (!test::writeFile(spec, QJsonDocument(json).toJson()))
            return {};
        const QString out = m_dir.filePath(u"%1-%2-theirs.pth"_s.arg(arch).arg(seed));
        QStringList args = {u"theirs"_s, arch, QString::number(kClasses.size()), out, spec};
        if (arch == u"small_cnn")
            args.append(smallCnnSource());
        const test::ProcessResult run = test::runOracle(u"training_oracle.py"_s, args, 600000);
        if (run.exitCode != 0) {
            qWarning() << run.err;
            return {};
        }
        return out;
    }

    QString smallCnnSource()
    {
        const QString path = m_dir.filePath(u"smallcnn.py"_s);
        if (!QFile::exists(path))
            test::writeFile(path, smallCnnPythonSource().toUtf8());
        return path;
    }

    ExportOptions options(const QString &arch, const QString &outDir,
                          const QString &transform = kTransform)
    {
        ExportOptions o;
        o.formats = {ExportFormat::TorchScript, ExportFormat::Onnx};
        o.outDir = outDir;
        o.arch = arch;
        o.valTransforms = transform;
        o.classes = kClasses;
        o.verifyData = m_data;
        o.verifyImages = 4;
        return o;
    }

    QJsonObject oracleCheck(const QString &arch, const QString &checkpoint, const QString &dir,
                            const QString &transform, bool corrupt = false)
    {
        const QString spec = m_dir.filePath(u"check-%1.json"_s.arg(arch));
        test::writeFile(
            spec,
            QJsonDocument(QJsonObject{{u"transform"_s, transform},
                                      {u"images"_s, QJsonArray::fromStringList(m_images)}})
                .toJson());
        QStringList args
            = {u"check"_s, arch, QString::number(kClasses.size()), checkpoint, dir, spec};
        if (arch == u"small_cnn")
            args.append(smallCnnSource());
        if (corrupt)
            args.append(u"--corrupt"_s);
        const test::ProcessResult run = test::runOracle(u"export_oracle.py"_s, args, 600000);
        if (run.exitCode != 0)
            qWarning() << run.err;
        return QJsonDocument::fromJson(run.out).object();
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        configureRuntime(2);
        SampleDataOptions options;
        options.source = test::fashionMnistSource(m_dir.path());
        options.limitPerClass = 10;
        auto exported = exportFashionMnist(m_dir.filePath(u"fmnist"_s), options);
        QVERIFY2(exported, qPrintable(exported.errorMessage()));
        m_data = exported->root;
        QDirIterator it(m_data + u"/val"_s, QDir::Files, QDirIterator::Subdirectories);
        while (it.hasNext())
            m_images.append(it.next());
        m_images.sort();
        m_images = m_images.mid(0, 3);
        QCOMPARE(m_images.size(), 3);
    }

    void labelsAndPreprocessingJson()
    {
        const QJsonObject labels = QJsonDocument::fromJson(labelsJson(kClasses)).object();
        QCOMPARE(labels[u"classes"_s].toArray().toVariantList().size(), 5);
        QCOMPARE(labels[u"class_to_idx"_s].toObject()[u"coat"_s].toInt(), 2);

        QStringList warnings;
        auto json
            = preprocessingJson(u"transforms.Compose([transforms.Resize(72, interpolation="
                                "transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(64), "
                                "transforms.Grayscale(3), transforms.ToTensor(), "
                                "transforms.Normalize([0.5, 0.4, 0.3], [0.2, 0.2, 0.2])])"_s,
                                &warnings);
        QVERIFY2(json, qPrintable(json.errorMessage()));
        QVERIFY2(warnings.isEmpty(), qPrintable(warnings.join(u'\n')));
        const QJsonObject spec = QJsonDocument::fromJson(json.value()).object();
        const QJsonArray steps = spec[u"steps"_s].toArray();
        QStringList ops;
        for (const QJsonValue &step : steps)
            ops.append(step.toObject()[u"op"_s].toString());
        QCOMPARE(ops,
                 (QStringList{u"resize"_s, u"center_crop"_s, u"grayscale"_s, u"to_tensor"_s,
                              u"normalize"_s}));
        QCOMPARE(steps[0].toObject()[u"shorter_side"_s].toInt(), 72);
        QCOMPARE(steps[0].toObject()[u"interpolation"_s].toString(), u"bicubic"_s);
        QCOMPARE(steps[4].toObject()[u"mean"_s].toArray()[1].toDouble(), 0.4);

        // What a program cannot reproduce from data is named.
        warnings.clear();
        QVERIFY(preprocessingJson(u"transforms.Compose([transforms.Pad(4), "
                                  "transforms.RandomHorizontalFlip(), transforms.ToTensor()])"_s,
                                  &warnings));
        QCOMPARE(warnings.size(), 2);
        QVERIFY(warnings[0].contains(u"Pad"_s));
        QVERIFY(warnings[1].contains(u"RandomHorizontalFlip"_s));
    }

    /// The sidecar, applied with PIL by predict.py's preprocess(), gives our val pipeline's
    /// tensors for images of several sizes and modes.
    void preprocessingMatchesPil_data()
    {
        QTest::addColumn<QString>("pipeline");
        QTest::newRow("resize crop normalize")
            << u"transforms.Compose([transforms.Resize(72), transforms.CenterCrop(64), "
               "transforms.ToTensor(), transforms.Normalize((0.485, 0.456, 0.406), "
               "(0.229, 0.224, 0.225))])"_s;
        QTest::newRow("bicubic pair grayscale crop larger")
            << u"transforms.Compose([transforms.Resize((40, 52), interpolation="
               "transforms.InterpolationMode.BICUBIC), transforms.Grayscale(3), "
               "transforms.CenterCrop(48), transforms.ToTensor()])"_s;
        QTest::newRow("max size nearest")
            << u"transforms.Compose([transforms.Resize(50, interpolation="
               "transforms.InterpolationMode.NEAREST, max_size=60), transforms.ToTensor(), "
               "transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])])"_s;
    }
    void preprocessingMatchesPil()
    {
        QFETCH(QString, pipeline);
        const QString dir = m_dir.filePath(
            u"pre-%1"_s.arg(QString::fromUtf8(QTest::currentDataTag())).replace(u' ', u'-'));
        QVERIFY(QDir().mkpath(dir));
        auto spec = preprocessingJson(pipeline);
        QVERIFY(spec);
        QVERIFY(test::writeFile(dir + u"/preprocessing.json"_s, spec.value()));
        QVERIFY(test::writeFile(dir + u"/predict.py"_s, predictPyText(ExportFormat::TorchScript)));
        auto compiled = compilePipelineSource(pipeline, u"val"_s);
        QVERIFY(compiled);

        struct Sample
        {
            QString name;
            QImage image;
            const char *format;
        };
        QImage rgb(97, 61, QImage::Format_RGB32), gray(50, 90, QImage::Format_Grayscale8),
            alpha(64, 64, QImage::Format_ARGB32), gray16(70, 70, QImage::Format_Grayscale16),
            photo(400, 300, QImage::Format_RGB32);
        for (QImage *image : {&rgb, &gray, &alpha, &gray16, &photo}) {
            for (int y = 0; y < image->height(); ++y) {
                for (int x = 0; x < image->width(); ++x)
                    image->setPixelColor(x, y,
                                         QColor((x * 7 + y * 3) % 256, (x * y) % 256,
                                                (255 - x * 2) & 255, (x * 4) % 256));
            }
        }
        QImage palette = rgb.convertToFormat(QImage::Format_Indexed8);
        const QList<Sample> samples
            = {{u"rgb.png"_s, rgb, "PNG"},         {u"gray.png"_s, gray, "PNG"},
               {u"alpha.png"_s, alpha, "PNG"},     {u"gray16.png"_s, gray16, "PNG"},
               {u"palette.png"_s, palette, "PNG"}, {u"photo.jpg"_s, photo, "JPEG"}};
        QStringList args = {u"preprocess"_s, dir};
        for (const Sample &s : samples) {
            const QString path = dir + u'/' + s.name;
            QVERIFY(s.image.save(path, s.format));
            auto input = loadTransformInput(path);
            QVERIFY2(input, qPrintable(input.errorMessage()));
            TorchGenerator rng(0);
            auto run = compiled->run(input.value(), rng);
            QVERIFY2(run && run->output.isTensor(), qPrintable(s.name));
            const std::vector<float> &data = run->output.tensor.data;
            const QString ours = path + u".f32"_s;
            QVERIFY(test::writeFile(ours,
                                    QByteArray(reinterpret_cast<const char *>(data.data()),
                                               qsizetype(data.size() * sizeof(float)))));
            args << path << ours;
        }
        const test::ProcessResult run = test::runOracle(u"export_oracle.py"_s, args);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonObject out = QJsonDocument::fromJson(run.out).object();
        QVERIFY2(out[u"max_diff"_s].toDouble(1.0) <= 1e-6, run.out.constData());
    }

    void everyArchitecture_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("transform");
        for (const ModelArch &arch : modelArchitectures())
            QTest::newRow(qPrintable(arch.name)) << arch.name << kTransform;
        // 28×28: small_cnn's 7×7 maps do not divide into its 4×4 pooling.
        QTest::newRow("small_cnn 28x28")
            << u"small_cnn"_s
            << u"transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, "
               "0.5), (0.25, 0.25, 0.25))])"_s;
    }
    void everyArchitecture()
    {
        QFETCH(QString, arch);
        QFETCH(QString, transform);
        const QString checkpoint = torchvisionCheckpoint(arch, transform);
        QVERIFY(!checkpoint.isEmpty());
        const QString dir = m_dir.filePath(
            u"export-%1"_s.arg(QString::fromUtf8(QTest::currentDataTag())).replace(u' ', u'-'));
        auto result = exportModel(checkpoint, options(arch, dir, transform));
        QVERIFY2(result, qPrintable(result.errorMessage()));
        QCOMPARE(result->formats.size(), 2);
        for (const ExportedFormat &f : result->formats) {
            QVERIFY(f.verified);
            QVERIFY(f.maxAbsDiff <= f.tolerance);
            QCOMPARE(f.verifyImages, 4);
        }
        QCOMPARE(result->files.size(), 6); // model.pt, model.onnx, labels, preprocessing, 2 × py

        const QJsonObject check = oracleCheck(arch, checkpoint, dir, transform);
        QVERIFY2(!check.isEmpty(), "the oracle failed");
        const double scale = check[u"scale"_s].toDouble();
        QVERIFY2(check[u"ts_diff"_s].toDouble(1.0) <= 1e-5 * scale,
                 QJsonDocument(check).toJson().constData());
        QVERIFY2(check[u"ts_diff_other"_s].toDouble(1.0) <= 1e-4 * scale,
                 QJsonDocument(check).toJson().constData());
        QVERIFY(check[u"keys_match"_s].toBool());
        QCOMPARE(check[u"classes"_s].toArray().toVariantList().size(), kClasses.size());
        QCOMPARE(check[u"extra"_s][u"labels.json"_s][u"classes"_s][2].toString(), u"coat"_s);
        QVERIFY(check[u"extra"_s][u"preprocessing.json"_s][u"steps"_s].isArray());
        QVERIFY2(check[u"checker"_s].isNull(), qPrintable(check[u"checker"_s].toString()));
        QCOMPARE(check[u"metadata"_s][u"arch"_s].toString(), arch);
        QVERIFY(check[u"metadata"_s][u"preprocessing"_s].isString());
        QCOMPARE(check[u"outputs"_s].toArray().first().toString(), u"logits"_s);
        // Every graph but small_cnn's (its 4×4 adaptive pooling fixed for the export's size)
        // keeps height and width free.
        QCOMPARE(check[u"dynamic_size"_s].toBool(), arch != u"small_cnn");
        if (check[u"onnx_diff"_s].isNull()) {
            qWarning("cv2 is not importable: ONNX checked with OpenCV's C++ API only");
        } else {
            QVERIFY2(check[u"onnx_diff"_s].toDouble() <= 1e-4 * scale,
                     QJsonDocument(check).toJson().constData());
            if (check[u"dynamic_size"_s].toBool())
                QVERIFY2(check[u"onnx_rel_diff_other"_s].toDouble(1.0) <= 1e-4,
                         QJsonDocument(check).toJson().constData());
        }
    }

    /// A wrong weight is a mismatch: in the oracle's comparison, and in our check of files that
    /// do not hold the checkpoint's weights.
    void wrongWeightIsAMismatch()
    {
        const QString checkpoint = torchvisionCheckpoint(u"small_cnn"_s, kTransform);
        QVERIFY(!checkpoint.isEmpty());
        const QString dir = m_dir.filePath(u"mismatch"_s);
        QVERIFY(exportModel(checkpoint, options(u"small_cnn"_s, dir)));
        const QJsonObject check = oracleCheck(u"small_cnn"_s, checkpoint, dir, kTransform, true);
        const double scale = check[u"scale"_s].toDouble();
        QVERIFY2(check[u"ts_diff"_s].toDouble() > 1e-5 * scale,
                 QJsonDocument(check).toJson().constData());
        QVERIFY2(check[u"onnx_diff"_s].isNull() || check[u"onnx_diff"_s].toDouble() > 1e-4 * scale,
                 QJsonDocument(check).toJson().constData());

        ExportOptions o = options(u"small_cnn"_s, dir);
        QVERIFY(verifyExport(checkpoint, o));
        // Other weights: the same architecture freshly initialised.
        const QString other = m_dir.filePath(u"other.pth"_s);
        QVERIFY(exportInitialWeights(u"small_cnn"_s, int(kClasses.size()), 7, other));
        for (const ExportFormat format : {ExportFormat::TorchScript, ExportFormat::Onnx}) {
            o.formats = {format};
            auto mismatch = verifyExport(other, o);
            QVERIFY(!mismatch);
            QVERIFY2(mismatch.errorMessage().contains(u"does not reproduce ours"_s),
                     qPrintable(mismatch.errorMessage()));
        }
    }

    /// A checkpoint trained in Python (torchvision's resnet18 state dict) through the CLI, and
    /// the predict.py it writes.
    void torchvisionCheckpointThroughCli()
    {
        const QString checkpoint = torchvisionCheckpoint(u"resnet18"_s, kTransform, 1);
        QVERIFY(!checkpoint.isEmpty());
        const QString dir = m_dir.filePath(u"cli-resnet18"_s);
        const test::ProcessResult run = test::runCli(
            {u"export"_s, checkpoint, u"--format"_s, u"both"_s, u"-o"_s, dir, u"--model"_s,
             u"resnet18"_s, u"--val-transforms"_s, kTransform, u"--verify-data"_s, m_data,
             u"--opset"_s, u"17"_s, u"--softmax"_s, u"--json"_s},
            600000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonObject out = QJsonDocument::fromJson(run.out).object();
        const QJsonArray formats = out[u"formats"_s].toArray();
        QCOMPARE(formats.size(), 2);
        for (const QJsonValue &f : formats)
            QVERIFY(f[u"verified"_s].toBool());
        QVERIFY(QFile::exists(dir + u"/predict.py"_s));
        QVERIFY(QFile::exists(dir + u"/predict_onnx.py"_s));
        // --softmax: the ONNX file gives probabilities, torchvision's softmax within 1e-4.
        const QJsonObject check = oracleCheck(u"resnet18"_s, checkpoint, dir, kTransform);
        QCOMPARE(check[u"outputs"_s].toArray().first().toString(), u"probabilities"_s);
        QVERIFY2(check[u"ts_diff"_s].toDouble(1.0) <= 1e-5 * check[u"scale"_s].toDouble(),
                 QJsonDocument(check).toJson().constData());
        QVERIFY2(check[u"onnx_diff"_s].isNull() || check[u"onnx_diff"_s].toDouble() <= 1e-4,
                 QJsonDocument(check).toJson().constData());

        const test::ProcessResult predicted
            = test::runOracle(u"export_oracle.py"_s, {u"predict"_s, dir, m_images[0], m_images[1]});
        QVERIFY2(predicted.exitCode == 0, predicted.err.constData());
        QCOMPARE(predicted.out.count('\n'), 2);
        QVERIFY(predicted.out.contains('%'));

        const test::ProcessResult usage
            = test::runCli({u"export"_s, checkpoint, u"-o"_s, dir, u"--format"_s, u"tflite"_s});
        QCOMPARE(usage.exitCode, 2);
    }
    /// predict --csv on the Fashion-MNIST val folder: one row per image, and eval's accuracy;
    /// the exported files give the same predictions through --model.
    void predictCsvMatchesEval()
    {
        const QString run = m_dir.filePath(u"run"_s);
        const test::ProcessResult trained
            = test::runCli({u"train"_s, u"--data"_s, m_data, u"--out"_s, run, u"--model"_s,
                            u"small_cnn"_s, u"--epochs"_s, u"2"_s, u"--batch-size"_s, u"32"_s,
                            u"--device"_s, u"cpu"_s, u"--threads"_s, u"2"_s},
                           600000);
        QVERIFY2(trained.exitCode == 0, trained.err.constData());
        const QString best = run + u"/best.pth"_s;
        const test::ProcessResult eval = test::runCli(
            {u"eval"_s, u"--data"_s, m_data, u"--checkpoint"_s, best, u"--json"_s}, 600000);
        QVERIFY2(eval.exitCode == 0, eval.err.constData());
        const QJsonObject evaluation = QJsonDocument::fromJson(eval.out).object();

        auto predictCsv = [&](const QStringList &model, const QString &name) {
            const QString csv = m_dir.filePath(name);
            QStringList args{u"predict"_s, m_data + u"/val"_s, u"--csv"_s,
                             csv,          u"--top-k"_s,       u"3"_s};
            const test::ProcessResult predicted = test::runCli(args + model, 600000);
            if (predicted.exitCode != 0)
                qWarning() << predicted.err;
            QFile file(csv);
            QMap<QString, QStringList> rows;
            if (!file.open(QIODevice::ReadOnly))
                return rows;
            const QList<QByteArray> lines = file.readAll().split('\n');
            for (qsizetype i = 1; i < lines.size(); ++i) {
                if (!lines[i].isEmpty()) {
                    const QStringList row = QString::fromUtf8(lines[i]).split(u',');
                    rows.insert(row[0], row);
                }
            }
            return rows;
        };
        const QMap<QString, QStringList> ours
            = predictCsv({u"--checkpoint"_s, best}, u"predictions.csv"_s);
        QCOMPARE(ours.size(), evaluation[u"images"_s].toInt());
        qint64 correct = 0;
        for (auto it = ours.cbegin(); it != ours.cend(); ++it) {
            QCOMPARE(it.value().size(), 1 + 2 * 3 + 1);
            QVERIFY(it.value().last().isEmpty()); // no error
            correct += QFileInfo(it.key()).dir().dirName() == it.value()[1] ? 1 : 0;
        }
        QCOMPARE(100.0 * double(correct) / double(ours.size()),
                 evaluation[u"accuracy"_s].toDouble());

        // The exported files predict the same.
        const QString dir = m_dir.filePath(u"export-run"_s);
        ExportOptions o;
        o.formats = {ExportFormat::TorchScript, ExportFormat::Onnx};
        o.outDir = dir;
        auto exported = exportModel(best, o);
        QVERIFY2(exported, qPrintable(exported.errorMessage()));
        for (const QString &file : {u"model.pt"_s, u"model.onnx"_s}) {
            const QMap<QString, QStringList> theirs
                = predictCsv({u"--model"_s, dir + u'/' + file}, file + u".csv"_s);
            QCOMPARE(theirs.size(), ours.size());
            for (auto it = ours.cbegin(); it != ours.cend(); ++it) {
                const QStringList row = theirs.value(it.key());
                QCOMPARE(row.value(1), it.value()[1]);
                QVERIFY(qAbs(row.value(2).toDouble() - it.value()[2].toDouble()) < 1e-4);
            }
        }
    }
};

QTEST_GUILESS_MAIN(TstExport)
#include "tst_export.moc"
