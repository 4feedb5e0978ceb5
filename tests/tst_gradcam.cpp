// Grad-CAM against a Python reference: hooks on torchvision's resnet18 and mobilenet_v2 loaded
// from the same state dict (tests/tools/gradcam_oracle.py), on real Fashion-MNIST images; every
// architecture's heatmap where its last convolutional stage is; the overlay; predict --cam.
#include "testutil.h"

#include "dataset/sampledata.h"
#include "torch/runtime.h"
#include "training/evaluation.h"
#include "training/gradcam.h"
#include "training/models.h"
#include "training/training.h"

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>

using namespace ifs;
using namespace Qt::StringLiterals;

namespace {

// Non-square, so that a width/height mix-up shows: 3×4 feature maps at stride 32.
const QString kTransform
    = u"transforms.Compose([transforms.Resize((96, 128)), transforms.ToTensor(), "
      "transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])"_s;

QStringList numberedClasses(int n)
{
    QStringList classes;
    for (int i = 0; i < n; ++i)
        classes.append(QString::number(i));
    return classes;
}

Result<Classifier> loadWeights(const QString &weights, const QString &arch, int classes)
{
    ClassifierOptions options;
    options.device = u"cpu"_s;
    options.arch = arch;
    options.valTransforms = kTransform;
    options.classes = numberedClasses(classes);
    return Classifier::load(weights, options);
}

} // namespace

class TestGradCam : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_data;
    QStringList m_images; ///< real images of different classes

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        configureRuntime(2);
        SampleDataOptions options;
        options.source = test::fashionMnistSource(m_dir.path(), 5);
        options.limitPerClass = 2;
        auto exported = exportFashionMnist(m_dir.filePath(u"fmnist"_s), options);
        QVERIFY2(exported, qPrintable(exported.errorMessage()));
        m_data = exported->root;
        QDirIterator it(m_data + u"/val"_s, QDir::Files, QDirIterator::Subdirectories);
        while (it.hasNext())
            m_images.append(it.next());
        m_images.sort();
        QVERIFY(m_images.size() >= 10);
    }

    /// Ours against the reference, for the predicted class and for a chosen one, within float
    /// tolerance (the maps are normalised to a maximum of 1).
    void equalsTorchvisionWithHooks_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::newRow("resnet18") << u"resnet18"_s;
        QTest::newRow("mobilenet_v2") << u"mobilenet_v2"_s;
    }
    void equalsTorchvisionWithHooks()
    {
        QFETCH(QString, arch);
        const int classes = 10;
        const QStringList images = {m_images[0], m_images[5], m_images[11]};
        const QString spec = m_dir.filePath(arch + u"-spec.json"_s);
        QVERIFY(test::writeFile(spec,
                                QJsonDocument(QJsonObject{
                                                  {u"transform"_s, kTransform},
                                                  {u"images"_s, QJsonArray::fromStringList(images)},
                                              })
                                    .toJson()));
        const QString weights = m_dir.filePath(arch + u"-weights.pth"_s);
        test::ProcessResult made = test::runOracle(
            u"gradcam_oracle.py"_s, {u"weights"_s, arch, QString::number(classes), weights, spec},
            300000);
        QVERIFY2(made.exitCode == 0, made.err.constData());
        auto classifier = loadWeights(weights, arch, classes);
        QVERIFY2(classifier, qPrintable(classifier.errorMessage()));

        QJsonArray cases;
        for (const QString &image : images) {
            for (const int wanted : {-1, 3}) {
                GradCamOptions options;
                options.classIndex = wanted;
                auto cam = computeGradCam(classifier.value(), image, options);
                QVERIFY2(cam, qPrintable(cam.errorMessage()));
                QCOMPARE(cam->size, QSize(128, 96));
                QCOMPARE(cam->featureSize, QSize(4, 3));
                QCOMPARE(cam->heatmap.size(), size_t(128 * 96));
                QCOMPARE(cam->input.size(), QSize(128, 96));
                if (wanted >= 0)
                    QCOMPARE(cam->classIndex, wanted);
                else
                    QCOMPARE(cam->classIndex, cam->predicted);
                const QString input = m_dir.filePath(u"%1-%2.f32"_s.arg(arch).arg(cases.size()));
                const ImageTensor &t = cam->inputTensor;
                QVERIFY(test::writeFile(input,
                                        QByteArray(reinterpret_cast<const char *>(t.data.data()),
                                                   qsizetype(t.data.size() * sizeof(float)))));
                QJsonArray heatmap;
                for (const float v : cam->heatmap)
                    heatmap.append(double(v));
                cases.append(QJsonObject{
                    {u"path"_s, image},
                    {u"class"_s, wanted},
                    {u"input"_s, input},
                    {u"shape"_s, QJsonArray{t.channels, t.height, t.width}},
                    {u"heatmap"_s, heatmap},
                    {u"probability"_s, double(cam->probability)},
                });
            }
        }
        const QString ours = m_dir.filePath(arch + u"-ours.json"_s);
        QVERIFY(test::writeFile(
            ours,
            QJsonDocument(QJsonObject{{u"transform"_s, kTransform}, {u"cases"_s, cases}})
                .toJson()));
        const test::ProcessResult run
            = test::runOracle(u"gradcam_oracle.py"_s,
                              {u"check"_s, arch, QString::number(classes), weights, ours}, 300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonArray results
            = QJsonDocument::fromJson(run.out).object().value(u"cases"_s).toArray();
        QCOMPARE(results.size(), cases.size());
        double worst = 0.0;
        for (qsizetype i = 0; i < results.size(); ++i) {
            const QJsonObject r = results[i].toObject();
            const QString what = u"%1 case %2"_s.arg(arch).arg(i);
            QVERIFY2(r.value(u"input_diff"_s).toDouble() < 1e-5, qPrintable(what));
            QVERIFY2(r.value(u"probability_diff"_s).toDouble() < 1e-5, qPrintable(what));
            QVERIFY2(r.value(u"heatmap_diff"_s).toDouble() < 1e-4,
                     qPrintable(what + u": heatmap differs by "_s
                                + QString::number(r.value(u"heatmap_diff"_s).toDouble())));
            QCOMPARE(r.value(u"shape"_s).toArray(), (QJsonArray{96, 128}));
            // The predicted class's map is not flat: the comparison says something.
            // Maps that vary over the image: the comparison says something.
            QVERIFY2(r.value(u"spread"_s).toDouble() > 0.5, qPrintable(what));
            worst = std::max(worst, r.value(u"heatmap_diff"_s).toDouble());
        }
        qInfo("%s: Grad-CAM within %.2g of torchvision's with hooks", qPrintable(arch), worst);
    }

    /// Every architecture the app trains: a heatmap at the input's size, in 0..1 with a maximum
    /// of 1, from feature maps at the architecture's output stride, and the probability that
    /// predict() gives.
    void everyArchitecture_data()
    {
        QTest::addColumn<QString>("arch");
        for (const ModelArch &arch : modelArchitectures())
            QTest::newRow(qPrintable(arch.name)) << arch.name;
    }
    void everyArchitecture()
    {
        QFETCH(QString, arch);
        const QString weights = m_dir.filePath(arch + u"-init.pth"_s);
        QVERIFY(exportInitialWeights(arch, 4, 1, weights));
        auto classifier = loadWeights(weights, arch, 4);
        QVERIFY2(classifier, qPrintable(classifier.errorMessage()));
        auto cam = computeGradCam(classifier.value(), m_images[0]);
        QVERIFY2(cam, qPrintable(cam.errorMessage()));
        QCOMPARE(cam->size, QSize(128, 96));
        const int stride = findModelArch(arch)->outputStride;
        QCOMPARE(cam->featureSize, QSize((128 + stride - 1) / stride, (96 + stride - 1) / stride));
        const auto [lo, hi] = std::minmax_element(cam->heatmap.begin(), cam->heatmap.end());
        QVERIFY(*lo >= 0.f);
        QVERIFY(*hi == 1.f || *hi == 0.f);
        // predict()'s probabilities (a fresh head's are close: compare values, not the argmax).
        auto predicted = classifier->predict({m_images[0]}, 4);
        QVERIFY(predicted);
        for (const auto &[index, probability] : predicted->first().top) {
            if (index == cam->classIndex)
                QVERIFY2(std::abs(probability - cam->probability) < 1e-4,
                         qPrintable(u"%1 against %2"_s.arg(probability).arg(cam->probability)));
        }
        auto wrong = computeGradCam(classifier.value(), m_images[0], GradCamOptions{4});
        QVERIFY(!wrong);
        QVERIFY2(wrong.errorMessage().contains(QFileInfo(m_images[0]).fileName()),
                 qPrintable(wrong.errorMessage()));
    }

    void overlayBlendsWithOpacity()
    {
        QCOMPARE(gradCamColor(0.f), qRgb(0, 0, 128));
        QCOMPARE(gradCamColor(0.5f), qRgb(128, 255, 128));
        QCOMPARE(gradCamColor(1.f), qRgb(128, 0, 0));
        QImage image(4, 2, QImage::Format_RGB888);
        image.fill(QColor(200, 100, 50));
        const std::vector<float> heatmap = {0.f, 1.f}; // 2×1: left cold, right hot
        const QImage none = gradCamOverlay(image, heatmap, QSize(2, 1), 0.0);
        QCOMPARE(none.pixel(0, 0), qRgb(200, 100, 50));
        const QImage full = gradCamOverlay(image, heatmap, QSize(2, 1), 1.0);
        QCOMPARE(full.size(), image.size());
        QCOMPARE(full.pixel(0, 0), gradCamColor(0.f));
        QCOMPARE(full.pixel(3, 1), gradCamColor(1.f));
        const QImage half = gradCamOverlay(image, heatmap, QSize(2, 1), 0.5);
        QCOMPARE(qRed(half.pixel(3, 0)), 164); // (200 + 128) / 2
        QVERIFY(gradCamOverlay(image, {1.f}, QSize(2, 1), 0.5).isNull()); // wrong size
        const QString png = m_dir.filePath(u"overlay.png"_s);
        QVERIFY(writePngAtomically(half, png));
        QCOMPARE(QImage(png).convertToFormat(QImage::Format_RGB32), half);
        QVERIFY(!writePngAtomically(half, m_dir.filePath(u"missing/folder/x.png"_s)));
    }

    /// ifstudio-cli predict --cam DIR: one overlay per image at the model input's size, the
    /// predictions printed as without it.
    void cliPredictWritesOverlays()
    {
        const QString weights = m_dir.filePath(u"cli-small.pth"_s);
        QVERIFY(exportInitialWeights(u"small_cnn"_s, 10, 2, weights));
        const QString out = m_dir.filePath(u"cams"_s);
        const QStringList base = {u"predict"_s,   u"--checkpoint"_s,     weights,    u"--model"_s,
                                  u"small_cnn"_s, u"--val-transforms"_s, kTransform, u"--device"_s,
                                  u"cpu"_s,       m_data + u"/val"_s};
        const test::ProcessResult plain = test::runCli(base);
        QCOMPARE(plain.exitCode, 0);
        const test::ProcessResult run
            = test::runCli(base + QStringList{u"--cam"_s, out, u"--cam-opacity"_s, u"0.6"_s});
        QVERIFY2(run.exitCode == 0, run.err.constData());
        QCOMPARE(run.out, plain.out);
        const QStringList written = QDir(out).entryList(QDir::Files);
        QCOMPARE(written.size(), m_images.size());
        for (const QString &name : written) {
            QVERIFY2(name.endsWith(u".cam.png"_s), qPrintable(name));
            QCOMPARE(QImage(out + u'/' + name).size(), QSize(128, 96));
        }
        const test::ProcessResult bad = test::runCli(
            base + QStringList{u"--cam"_s, out, u"--cam-class"_s, u"no-such-class"_s});
        QCOMPARE(bad.exitCode, 1);
        QVERIFY2(bad.err.contains("no-such-class"), bad.err.constData());
    }
};

QTEST_GUILESS_MAIN(TestGradCam)
#include "tst_gradcam.moc"
