#pragma once

#include "training/evaluation.h"
#include "training/predictjob.h"

#include <QHash>
#include <QStringList>
#include <QWidget>

class QComboBox;
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

Q_SIGNALS:
    void predictionsShown();
    void predictionFailed(const QString &message);

protected:
    // Images and folders dropped here are predicted.
    void dragEnterEvent(QDragEnterEvent *event) override;
    void dropEvent(QDropEvent *event) override;

private:
    void chooseCheckpoint();
    void updateCheckpointChoice();
    void showPredictions(const QList<ImagePrediction> &predictions, const QStringList &classes,
                         const QStringList &notes);

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
};

} // namespace ifs
