"""Score distillation: DDIM inversion, the losses SDS/CSD/ISM/CSM/VPCSM, and the 2D playground."""
