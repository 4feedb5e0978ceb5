#pragma once

#include "training/evaluation.h"
#include "training/predictjob.h"

#include <QHash>
#include <QImage>
#include <QStringList>
#include <QWidget>

#include <optional>

class QCheckBox;
class QComboBox;
class QSlider;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace ifs {

class ThumbnailLoader;

/// Top-k predictions for images or folders with a trained checkpoint: the current run's best or
/// last, or any file chosen. Prediction runs off the GUI thread; the loaded model is kept for the
/// next request.
class PredictPanel : public QWidget
{
    Q_OBJECT

public:
    explicit PredictPanel(QWidget *parent = nullptr);
    ~PredictPanel() override;

    /// The current run's checkpoints (empty: none yet).
    void setRunCheckpoints(const QString &best, const QString &last);
    /// Chooses another checkpoint file ("Other").
    void setCheckpoint(const QString &path);
    /// The checkpoint predictions use now; empty when none is available.
    QString checkpoint() const;
    void setClassifierOptions(const ClassifierOptions &options) { m_options = options; }
    /// Where the file dialogs start.
    void setStartFolder(const QString &folder) { m_startFolder = folder; }

    /// Predicts image files and folders (walked for images).
    void predict(const QStringList &paths);
    void setTopK(int k);
    int topK() const;
    bool isPredicting() const;

    QTableWidget *table() const { return m_table; }
    QComboBox *checkpointCombo() const { return m_checkpointCombo; }
    QLabel *statusLabel() const { return m_status; }
    QCheckBox *gradCamToggle() const { return m_camToggle; }
    QSlider *gradCamOpacity() const { return m_camOpacity; }
    /// The heatmap over the selected image as shown (full size); null when there is none.
    QImage gradCamImage() const { return m_camImage; }
    /// Writes the shown heatmap as a PNG (atomically).
    Status saveGradCam(const QString &path) const;

Q_SIGNALS:
    void predictionsShown();
    void predictionFailed(const QString &message);
    /// A Grad-CAM heatmap of the selected image is shown.
    void gradCamShown();

protected:
    // Images and folders dropped here are predicted.
    void dragEnterEvent(QDragEnterEvent *event) override;
    void dropEvent(QDropEvent *event) override;

private:
    void chooseCheckpoint();
    void updateCheckpointChoice();
    void showPredictions(const QList<ImagePrediction> &predictions, const QStringList &classes,
                         const QStringList &notes);
    QWidget *buildGradCamPane();
    /// Asks for the selected row's heatmap when the toggle is on.
    void requestGradCam();
    void renderGradCam();

    PredictJob *m_job;
    ThumbnailLoader *m_loader;
    ClassifierOptions m_options;
    QString m_startFolder;
    QString m_best, m_last, m_other;
    QStringList m_paths; // the last request, predicted again when k changes
    QHash<QString, int> m_rowOfPath;

    QComboBox *m_checkpointCombo;
    QLabel *m_checkpointLabel;
    QPushButton *m_addImages;
    QPushButton *m_addFolder;
    QSpinBox *m_topk;
    QLabel *m_status;
    QProgressBar *m_progress;
    QTableWidget *m_table;

    QStringList m_classes; // of the predictions shown
    std::optional<GradCamResult> m_cam;
    QString m_camPath; // the image m_cam explains, or the one requested
    QImage m_camImage;
    QCheckBox *m_camToggle;
    QSlider *m_camOpacity;
    QLabel *m_camPreview;
    QLabel *m_camInfo;
    QPushButton *m_camSave;
};

} // namespace ifs
